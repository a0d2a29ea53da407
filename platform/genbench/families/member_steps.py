"""The step pieces of a batched model's members (genbench.train.members): each member's noise from its own generator,
each member's gradient norm and clipping. Every tensor is member-major: (S, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from genbench.families.configs.optim import OptimConfig
from genbench.families.steps import optimiser

Generators = list[torch.Generator]  # one per member, on the device: its noise, drawn as its per-seed run draws it


def noise(gens: Generators, draw: Callable[..., torch.Tensor], *shape: int) -> torch.Tensor:
    """(S, *shape): member i's draw from its own generator, as `draw(*shape)` draws it in a per-seed run."""
    return torch.stack([draw(*shape, generator=g, device=g.device) for g in gens])


def member_grad_norms(params: Iterable[nn.Parameter], max_norm: float = 0.0) -> torch.Tensor:
    """Each member's total L2 gradient norm over `params` (member-major), before clipping: (S,). With max_norm > 0,
    each member's gradients are scaled as clip_grad_norm_ scales one network's (genbench.families.steps)."""
    grads = [p.grad for p in params if p.grad is not None]
    per_tensor = torch.stack([g.flatten(1).norm(dim=1) for g in grads])  # (tensors, S)
    norms = per_tensor.norm(dim=0)  # (S,)
    if max_norm > 0:
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (S,)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms


def member_optimiser(o: OptimConfig, params: Iterable[nn.Parameter]) -> torch.optim.AdamW:
    """The `optim.*` section's AdamW over member-major parameters, fused (one kernel for every tensor). Weight decay
    reaches what it reaches in a member alone (genbench.families.steps.decay_groups: tensors of 2 or more dimensions),
    which the member dimension makes 3 or more: a member's bias, (S, out), does not decay."""
    params = list(params)
    return optimiser(o, params, decayed=[p for p in params if p.dim() >= 3], fused=True)
