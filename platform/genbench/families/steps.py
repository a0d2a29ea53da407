"""The pieces of a training step every family shares: its optimiser and learning-rate schedule from the `optim.*`
section, the gradient norm and clipping, the weight average (EMA) and eval mode. They act on a family's own networks
and optimisers only; the loop, devices and checkpoints are genbench.train's."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from genbench.families.configs.optim import OptimConfig


def decay_groups(
    params: Iterable[nn.Parameter], weight_decay: float, decayed: Iterable[nn.Parameter] | None = None
) -> list[dict]:
    """AdamW's two parameter groups: [weights that decay, the rest]. A parameter decays when it has 2 or more
    dimensions (a weight matrix or a convolution kernel, never a bias or a normalisation gain) and is one of
    `decayed` (default: every parameter in `params`); either group may be empty."""
    params = list(params)
    allowed = {id(p) for p in (params if decayed is None else decayed)}
    decays = [p.dim() >= 2 and id(p) in allowed for p in params]
    return [
        {"params": [p for p, d in zip(params, decays) if d], "weight_decay": weight_decay},
        {"params": [p for p, d in zip(params, decays) if not d], "weight_decay": 0.0},
    ]


def adamw(
    params: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float],
    weight_decay: float = 0.0,
    decayed: Iterable[nn.Parameter] | None = None,
    fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW over `params` with decoupled weight decay on the weights decay_groups picks. With weight_decay 0 it
    steps exactly as Adam does. fused: one kernel for every tensor (fewer launches for many small tensors)."""
    return torch.optim.AdamW(
        decay_groups(params, weight_decay, decayed), lr=lr, betas=betas, fused=True if fused else None
    )


def optimiser(
    o: OptimConfig, params: Iterable[nn.Parameter], decayed: Iterable[nn.Parameter] | None = None, fused: bool = False
) -> torch.optim.AdamW:
    """The optimiser of an `optim.*` section over `params`; `decayed` narrows the weights that decay."""
    return adamw(params, o.lr, (o.beta1, o.beta2), o.weight_decay, decayed, fused)


def lr_factor(step: int, total_steps: int, warmup_steps: int, decay: str) -> float:
    """Multiplier of the base learning rate after `step` optimiser steps: a linear warm-up from 1 / warmup_steps
    to 1 over the first warmup_steps steps, then 1 (decay 'none') or a cosine from 1 to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "none":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class Horizon:
    """The steps a run is expected to take, which schedules read at every step: train.steps, or under a compute
    budget the loop's estimate (genbench.train.plan), updated as the run spends it."""

    steps: int


def lr_schedule(opt: torch.optim.Optimizer, o: OptimConfig, horizon: Horizon) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate schedule of an `optim.*` section over the run's horizon of optimiser steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, horizon.steps, o.warmup_steps, o.lr_decay)
    )


def stepped(opt: torch.optim.Optimizer) -> list[nn.Parameter]:
    """The parameters an optimiser steps, in its groups' order."""
    return [p for group in opt.param_groups for p in group["params"]]


def clip_grads(params: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """The total L2 norm of the gradients of `params` before clipping (a 0-dim tensor on their device: no host
    sync); when max_norm > 0 the gradients are scaled so that their total norm is at most max_norm."""
    params = [p for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])  # tested again: for mypy
    if max_norm > 0:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm


def optimiser_step(
    opt: torch.optim.Optimizer, max_norm: float = 0.0, sched: torch.optim.lr_scheduler.LRScheduler | None = None
) -> torch.Tensor:
    """One optimiser step on the gradients already accumulated: clip (max_norm > 0), step, advance the schedule.
    Returns the gradient norm before clipping (0-dim tensor, no host sync)."""
    norm = clip_grads(stepped(opt), max_norm)
    opt.step()
    if sched is not None:
        sched.step()
    return norm


def ema_copy(net: nn.Module, decay: float) -> nn.Module | None:
    """A frozen copy of `net` to hold its weight average, or None when decay is 0 (no EMA)."""
    return copy.deepcopy(net).requires_grad_(False) if decay > 0 else None


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net for every parameter. Buffers are copied from `net`, not averaged:
    batch-norm running statistics, counters and flags (ActNorm's) are the live network's own (one policy, every
    family)."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)
    for held, live in zip(ema.buffers(), net.buffers()):
        held.copy_(live)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Every module in eval mode inside the block (dropout off, batch norm on running statistics, ActNorm never
    initialising from scored or sampled data), each restored to its own mode after, also on an error."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
