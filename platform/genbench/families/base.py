"""The family protocol that keeps the training loop generic, and the family registry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from genbench.registry import Registry

if TYPE_CHECKING:
    from genbench.config import RunConfig
    from genbench.data import Dataset


class Family(Protocol):
    """What the loop needs of a family: its modules, one optimisation step, and samples."""

    batches_per_step: int  # the loop hands train_step batch_size * batches_per_step rows

    def modules(self) -> dict[str, nn.Module]: ...

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on batch (B * batches_per_step, D); returns detached 0-dim `train.*` scalars."""
        ...

    def sample(self, n: int) -> torch.Tensor:
        """n samples in data space: (n, D) or (n, C, H, W) with images in [0, 1]."""
        ...


class LikelihoodFamily(Family, Protocol):
    """A family that scores data: exact (flow, autoregressive) or a bound (VAE, diffusion)."""

    nll_method: str  # how nll is computed, stored beside the value: 'exact', 'bound: IWAE k=64', ...

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats of each example of batch: (B,).

        For discrete images (Dataset.levels) this is the NLL of the discrete values (dequantisation
        accounted for), so that bits per dimension are comparable across families.
        """
        ...


@dataclass(frozen=True)
class FamilySpec:
    """A family's name, its config sections (flat keys '<name>.*' and 'optim.*') and its builder."""

    name: str
    doc: str
    model_config: type
    optim_config: type
    build: Callable[["RunConfig", "Dataset"], Family]
    check: Callable[["RunConfig"], None] = lambda cfg: None  # constraints across sections; raises ConfigError
    defaults: dict[str, Any] = field(default_factory=dict)  # the family's default budget: {"train.steps": 5000}
    debug: dict[str, Any] = field(default_factory=dict)  # flat overrides for a debug-sized model (tests, smoke runs)


FAMILIES: Registry[FamilySpec] = Registry("family")


def count_params(family: Family) -> int:
    return sum(p.numel() for m in family.modules().values() for p in m.parameters())


def params_finite(family: Family) -> torch.Tensor:
    """0-dim bool tensor: every parameter of every module is finite (no host sync here)."""
    flags = [torch.isfinite(p).all() for m in family.modules().values() for p in m.parameters()]
    return torch.stack(flags).all()
