"""Ensemble versions of the PixelCNN's layers (genbench.nets.masked): S masked convolutions as one grouped convolution,
S residual blocks, and S PixelCNNs mapping (S, B, C, H, W) to (S, B, C, P, H, W). Registered with @stacks."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.nets.ensemble import stack, stacks, write_member
from genbench.nets.ensemble_conv import EnsembleConv
from genbench.nets.masked import MaskedConv2d, PixelCNN, ResidualBlock


@stacks(MaskedConv2d)
class EnsembleMaskedConv(EnsembleConv):
    """S MaskedConv2d layers (type A or B): (S, B, C, H, W) -> (S, B, C', H, W) as one convolution with S groups,
    each member's weight times its mask on every call, as MaskedConv2d.forward multiplies it.

    A PixelCNN's masks depend on the layer's shape and type alone, so the members' masks are equal; they are still
    stacked to (S, out, in, k, k), as every tensor of an ensemble is member-major (genbench.train.members freezes a
    member by indexing each tensor's first dimension)."""

    mask: torch.Tensor  # (S, out, in, k, k)

    def __init__(self, layers: list[Any]) -> None:
        super().__init__(layers)
        self.register_buffer("mask", torch.stack([layer.mask for layer in layers]))

    def effective_weight(self) -> torch.Tensor:
        """(S, out, in, k, k): each member's weight times its mask; the masked entries' gradient is 0, as alone."""
        return self.weight * self.mask


@stacks(ResidualBlock)
class EnsembleResidualBlock(nn.Module):
    """S PixelCNN residual blocks: x + body(x) on (S, B, 2h, H, W), the body's masked convolutions grouped."""

    def __init__(self, blocks: list[Any]) -> None:
        super().__init__()
        self.body = stack([b.body for b in blocks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def write(self, i: int, block: ResidualBlock) -> None:
        write_member(self.body, i, block.body)


@stacks(PixelCNN)
class EnsemblePixelCNN(nn.Module):
    """S PixelCNNs of one architecture: images (S, B, C, H, W) in [0, 1] -> params (S, B, C, P, H, W), member i's
    params[i, :, c, :, r, j] from its own image's pixels before (r, j) and, at (r, j), its colours before c."""

    def __init__(self, nets: list[Any]) -> None:
        super().__init__()
        self.colors, self.params_per_value = nets[0].colors, nets[0].params_per_value
        self.body = stack([n.body for n in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(2.0 * x - 1.0)  # (S, B, C * P, H, W): a view of the last grouped convolution's output
        return h.unflatten(2, (self.colors, self.params_per_value))  # (S, B, C, P, H, W)

    def write(self, i: int, net: PixelCNN) -> None:
        write_member(self.body, i, net.body)
