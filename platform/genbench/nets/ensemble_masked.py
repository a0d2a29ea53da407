"""Ensemble versions of MADE's layers (genbench.nets.masked): S masked linear layers, and S MADEs mapping (S, B, D)
to (S, B, D, P). Registered with genbench.nets.ensemble's `stack` (@stacks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.nets.ensemble import EnsembleLinear, stack, stacks, write_member
from genbench.nets.masked import MADE, MaskedLinear


class EnsembleMaskedLinear(EnsembleLinear):
    """S MaskedLinear layers: (S, B, in) -> (S, B, out), each member's weight times its mask on every call.

    MADE's masks are deterministic, so the members' masks are equal; they are still stacked to (S, in, out), as every
    tensor of an ensemble is member-major (genbench.train.members freezes a member by indexing each tensor's first
    dimension)."""

    mask_t: torch.Tensor  # (S, in, out): each member's mask, transposed as its weight is stored

    def __init__(self, layers: list[Any]) -> None:
        super().__init__(layers)
        self.register_buffer("mask_t", torch.stack([layer.mask.t() for layer in layers]))

    def effective_weight_t(self) -> torch.Tensor:
        """(S, in, out): each member's weight times its mask; the masked entries' gradient is 0, as alone."""
        return self.weight_t * self.mask_t


class EnsembleMADE(nn.Module):
    """S MADEs of one architecture: x (S, B, D) -> params (S, B, D, P), params[i, :, d] from x[i, :, :d] alone."""

    def __init__(self, made: list[Any]) -> None:
        super().__init__()
        self.dim, self.params_per_dim = made[0].dim, made[0].params_per_dim
        self.body = stack([m.body for m in made])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (S, B, D * P)
        return h.view(*x.shape[:-1], self.dim, self.params_per_dim)  # (S, B, D, P)

    def write(self, i: int, made: MADE) -> None:
        write_member(self.body, i, made.body)


stacks(MaskedLinear)(EnsembleMaskedLinear)
stacks(MADE)(EnsembleMADE)
