"""Masked networks for autoregressive models: MADE (Germain et al. 2015) and PixelCNN (van den Oord et al. 2016)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out, in) on every call."""

    mask: torch.Tensor  # a buffer (register_buffer): moves and saves with the module

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def hidden_degrees(width: int, dim: int) -> torch.Tensor:
    """Deterministic degrees 0..D-1 cycled over the units, so every degree gets units: (width,).

    MADE uses 1..D-1. Units of degree 0 see no input (a constant computed from biases) and feed every
    output; they give the first coordinate's marginal p(x1) a network of weights instead of the output
    biases alone, which Adam otherwise moves only ~lr per step (thousands of steps to shrink a scale).
    """
    return torch.arange(width) % dim


class MADE(nn.Module):
    """x (B, D) -> params (B, D, P) where params[:, d] depends only on x[:, :d] (the natural ordering).

    Unit degrees follow the MADE paper: input d has degree d+1, a hidden unit sees units of degree <= its
    own, and the outputs of coordinate d see hidden degrees < d+1, so they depend on x[:, :d] alone.
    Hidden degrees run over 0..D-1 (see hidden_degrees): coordinate 0 sees only the input-free units.
    """

    def __init__(self, dim: int, params_per_dim: int, depth: int, width: int) -> None:
        super().__init__()
        self.dim, self.params_per_dim = dim, params_per_dim
        degrees = [torch.arange(1, dim + 1)] + [hidden_degrees(width, dim) for _ in range(depth)]
        layers: list[nn.Module] = []
        for prev, cur in itertools.pairwise(degrees):
            layers += [MaskedLinear(cur[:, None] >= prev[None, :]), nn.ReLU()]
        out_degrees = torch.arange(1, dim + 1).repeat_interleave(params_per_dim)  # (D * P,)
        layers.append(MaskedLinear(out_degrees[:, None] > degrees[-1][None, :]))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).view(-1, self.dim, self.params_per_dim)  # (B, D, P)


def channel_groups(n_channels: int, colors: int) -> torch.Tensor:
    """Colour group (0..colors-1) of each of n_channels feature maps: contiguous blocks, (n_channels,)."""
    return torch.arange(n_channels) * colors // n_channels


def conv_mask(out_ch: int, in_ch: int, kernel: int, mask_type: str, colors: int) -> torch.Tensor:
    """PixelCNN mask (out, in, k, k): rows above, pixels left in the centre row, and at the centre pixel
    the colour groups before the output's group (type A) or up to and including it (type B)."""
    mask = torch.zeros(out_ch, in_ch, kernel, kernel)
    centre = kernel // 2
    mask[:, :, :centre, :] = 1.0
    mask[:, :, centre, :centre] = 1.0
    g_out, g_in = channel_groups(out_ch, colors), channel_groups(in_ch, colors)
    allowed = g_in[None, :] < g_out[:, None] if mask_type == "A" else g_in[None, :] <= g_out[:, None]
    mask[:, :, centre, centre] = allowed.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded square convolution with a PixelCNN mask of type A (first layer) or B (the rest)."""

    mask: torch.Tensor  # a buffer

    def __init__(self, in_ch: int, out_ch: int, kernel: int, mask_type: str, colors: int) -> None:
        if mask_type not in ("A", "B") or kernel % 2 == 0:
            raise ValueError(f"mask type A or B with an odd kernel, got {mask_type!r}, {kernel}")
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2)
        self.register_buffer("mask", conv_mask(out_ch, in_ch, kernel, mask_type, colors))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class ResidualBlock(nn.Module):
    """PixelRNN paper's residual block: ReLU, 1x1 (2h -> h), ReLU, kxk masked B (h -> h), ReLU, 1x1 (h -> 2h)."""

    def __init__(self, channels: int, kernel: int, colors: int) -> None:
        super().__init__()
        half = channels // 2
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, half, 1, "B", colors),
            nn.ReLU(),
            MaskedConv2d(half, half, kernel, "B", colors),
            nn.ReLU(),
            MaskedConv2d(half, channels, 1, "B", colors),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PixelCNN(nn.Module):
    """images (B, C, H, W) in [0, 1] -> params (B, C, P, H, W); params[:, c, :, i, j] depend only on the
    pixels before (i, j) in raster order and, at (i, j), on the colours before c (R -> G -> B).

    Because every layer is causal downwards, the output rows 0..r depend only on input rows 0..r:
    callers may pass the top r+1 rows alone (sampling does, to halve its cost).
    """

    def __init__(
        self, colors: int, params_per_value: int, channels: int, blocks: int, first_kernel: int, kernel: int = 3
    ) -> None:
        super().__init__()
        self.colors, self.params_per_value = colors, params_per_value
        out = colors * params_per_value
        self.body = nn.Sequential(
            MaskedConv2d(colors, channels, first_kernel, "A", colors),
            *[ResidualBlock(channels, kernel, colors) for _ in range(blocks)],
            nn.ReLU(),
            MaskedConv2d(channels, channels, 1, "B", colors),
            nn.ReLU(),
            MaskedConv2d(channels, out, 1, "B", colors),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(2.0 * x - 1.0)  # (B, C * P, H, W); inputs centred on 0
        return h.view(h.shape[0], self.colors, self.params_per_value, *h.shape[2:])  # (B, C, P, H, W)
