"""The family protocol that keeps the training loop generic, and what the loop asks of any family's networks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from genbench.chunks import CHUNK_BYTES, chunk_rows, map_rows, split_rows
from genbench.families.steps import Horizon

__all__ = ["CHUNK_BYTES", "chunk_rows", "map_rows", "split_rows"]  # the families import them from here


class Stateful(Protocol):
    """What a checkpoint saves and restores by name: a module, an optimiser, an LR scheduler, Counters."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...


class Counters:
    """Plain numbers a family keeps across steps (the VAE's KL warm-up step count) as one checkpointable part.

    It reads and writes the owner's attributes by name, so that a family's step code keeps `self.n += 1`."""

    def __init__(self, owner: object, *names: str) -> None:
        self.owner, self.names = owner, names

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self.owner, name) for name in self.names}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name in self.names:
            setattr(self.owner, name, state_dict[name])


@dataclass(frozen=True)
class Parts:
    """Everything a family holds that outlives one step, by name: what a checkpoint saves, what data parallelism
    averages (optimisers) and broadcasts (modules), and what placement moves to the device.

    The names are the keys of a checkpoint's state; the families use their attribute names, the keys that
    checkpoints had before parts were declared, so that older checkpoints still load."""

    modules: dict[str, nn.Module]  # every network, EMA copies included
    optimisers: dict[str, torch.optim.Optimizer]  # each step's gradients are averaged over workers first
    schedulers: dict[str, LRScheduler] = field(default_factory=dict)
    counters: dict[str, Counters] = field(default_factory=dict)
    # attributes holding constant tensors derived from the data (or holders with to_device(device)): moved with the
    # family, never saved (a resumed run rebuilds them from the same data)
    device_tensors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        groups = (self.modules, self.optimisers, self.schedulers, self.counters)
        names = [name for group in groups for name in group]
        if len(set(names)) < len(names):
            raise ValueError(f"a family declares one part name twice: {sorted(names)}")

    def stateful(self) -> dict[str, Stateful]:
        """Every part a checkpoint holds, by name."""
        return {**self.modules, **self.optimisers, **self.schedulers, **self.counters}


class Family(Protocol):
    """What the loop needs of a family: its parts, one optimisation step, samples and how they are drawn."""

    batches_per_step: int  # the loop hands train_step batch_size * batches_per_step rows
    autocast: Autocast  # entered around training forward passes; genbench.train.device.place sets it
    horizon: Horizon  # the steps the run is expected to take: its schedules read it, the loop updates it

    @property
    def sampler(self) -> str:
        """provenance.sampler: what sample() runs ('generator pass', 'ddim (10 steps)')."""
        ...

    @property
    def sample_nfe(self) -> int:
        """cost.sample_nfe: network evaluations per sample (the sequential cost of sampling)."""
        ...

    @property
    def nll_method(self) -> str | None:
        """likelihood.method ('exact', 'bound: IWAE k=64', ...); None: the family scores no likelihood."""
        ...

    def modules(self) -> dict[str, nn.Module]:
        """The trained networks (no EMA copies): parameter counts, finiteness checks, compilation."""
        ...

    def parts(self) -> Parts:
        """The declaration of every stateful part (checkpoints, data parallelism, device placement use it)."""
        ...

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on batch (B * batches_per_step, D); returns detached 0-dim `train.*` scalars."""
        ...

    def sample(self, n: int) -> torch.Tensor:
        """n samples in data space: (n, D) or (n, C, H, W) with images in [0, 1]."""
        ...


class LikelihoodFamily(Family, Protocol):
    """A family that scores data: exact (flow, autoregressive) or a bound (VAE, diffusion)."""

    @property
    def nll_method(self) -> str:
        """How nll is computed, stored beside the value: 'exact', 'bound: IWAE k=64', ..."""
        ...

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats of each example of batch: (B,).

        For discrete images (Dataset.levels) this is the NLL of the discrete values (dequantisation
        accounted for), so that bits per dimension are comparable across families.
        """
        ...


def count_params(family: Family) -> int:
    return sum(p.numel() for m in family.modules().values() for p in m.parameters())


def params_finite(family: Family) -> torch.Tensor:
    """0-dim bool tensor: every parameter of every module is finite (no host sync here)."""
    flags = [torch.isfinite(p).all() for m in family.modules().values() for p in m.parameters()]
    return torch.stack(flags).all()


def draw_categorical(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One draw per distribution of logits (..., K): (index (...,) long, bad (...,) bool).

    A diverged network's logits (a NaN or +inf, or every one -inf) define no distribution, and
    torch.distributions.Categorical raises on them; such rows draw from a uniform stand-in instead and are
    marked `bad`, so that the caller turns them into NaN samples (the evaluation then ends the run as
    diverged) rather than crash it. Good rows draw exactly what Categorical(logits) draws.
    """
    bad = ~torch.logsumexp(logits, dim=-1).isfinite()  # (...,): NaN, +inf, or no finite logit at all
    safe = torch.where(bad.unsqueeze(-1), torch.zeros_like(logits), logits)  # (..., K)
    return torch.distributions.Categorical(logits=safe).sample(), bad


def family_device(family: Family) -> torch.device:
    """The device of the family's networks (where its noise must be drawn)."""
    first = next(iter(family.modules().values()))
    return next(first.parameters()).device


class Autocast:
    """The precision of a family's training forward passes: bf16 autocast on its device type, or fp32.

    Families enter it around forward passes and losses only; backward follows the dtypes autocast chose.
    Likelihood evaluation (nll, bpd) and sampling never enter it: a log-likelihood sums thousands of per-value
    terms, and bf16's 8-bit mantissa would move the reported nats by more than the differences compared.
    """

    def __init__(self, device_type: str = "cpu", bf16: bool = False) -> None:
        self.device_type, self.bf16 = device_type, bf16

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if not self.bf16:
            yield
            return
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            yield


def map_bytes(channels: int, shape: tuple[int, ...], live: int = 4) -> float:
    """Bytes per example of `live` float32 feature maps of `channels` channels at the data's resolution (an
    image shape (C, H, W)); for vectors (D,), of `live` hidden layers of `channels` units."""
    spatial = math.prod(shape[1:]) if len(shape) == 3 else 1
    return 4.0 * live * channels * spatial


def backward_in_chunks(
    loss_share: Callable[[torch.Tensor, float], torch.Tensor], batch: torch.Tensor, rows: int
) -> torch.Tensor:
    """Accumulates the gradient of a batch's mean loss over micro-batches of at most `rows` rows; returns the mean.

    loss_share(part, share) is part's mean loss times its share of the batch (len(part) / len(batch)). The
    gradients add up to the whole batch's (up to float rounding) for networks without batch-dependent layers
    (no batch norm), and the peak holds one micro-batch's activations instead of the whole batch's; a batch of
    at most `rows` rows is one pass, exactly as without chunks."""
    total = batch.new_zeros(())
    for part in split_rows(batch, rows):
        loss = loss_share(part, len(part) / len(batch))
        loss.backward()
        total = total + loss.detach()
    return total
