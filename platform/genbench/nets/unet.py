"""Time-conditioned denoisers for diffusion: sinusoidal time embedding, an MLP for vectors, a small U-Net for images.

Every denoiser takes t (B,), or (1,) when the whole batch shares one timestep (sampling): the
time embedding is then computed once and broadcast.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer sinusoids of (possibly fractional) timesteps t (B,) -> (B, dim), as in Ho et al. 2020."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, 2 * half)
    return F.pad(emb, (0, dim - 2 * half))  # an odd dim gets one zero column


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, dim): sinusoids followed by a two-layer SiLU MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim))


class TimeMLP(nn.Module):
    """Noise predictor for vectors: `depth` SiLU layers of `width` units, each shifted by a projection of the time.

    Adding the time embedding to every hidden layer (rather than only concatenating it to the input)
    lets each layer change its function with the noise level, which sharp toy mixtures need.
    """

    def __init__(self, dim: int, width: int, depth: int, time_dim: int) -> None:
        super().__init__()
        self.time = TimeEmbedding(time_dim)
        self.inp = nn.Linear(dim, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.time_proj = nn.ModuleList(nn.Linear(time_dim, width) for _ in range(depth + 1))
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (B, D), (B,) or (1,) -> (B, D)
        temb = F.silu(self.time(t))  # (B, time_dim)
        h = F.silu(self.inp(x) + self.time_proj[0](temb))  # (B, width)
        for layer, proj in zip(self.hidden, self.time_proj[1:]):
            h = F.silu(layer(h) + proj(temb))
        return self.out(h)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups that divide the channels (32 groups is too many for narrow nets)."""
    groups = math.gcd(8, channels)
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added between, and a 1x1 skip when channels change."""

    def __init__(self, ch_in: int, ch_out: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(ch_in), nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, ch_out)
        self.norm2, self.conv2 = group_norm(ch_out), nn.Conv2d(ch_out, ch_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:  # (B, Ci, H, W), (B, T) -> (B, Co, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class UNet(nn.Module):
    """Noise predictor for small images: `levels` resolutions (8x8 -> 4x4 -> ...), channels doubling per level.

    Each resolution has `blocks` residual blocks on the way down and blocks + 1 on the way up (one per
    skip, as in Ho et al. 2020); a strided conv halves and nearest upsampling plus a conv doubles the size.
    """

    def __init__(
        self, shape: tuple[int, int, int], channels: int, levels: int, blocks: int, time_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        in_ch, size, _ = shape
        if size % 2 ** (levels - 1):
            raise ValueError(f"image size {size} cannot be halved {levels - 1} times")
        self.time = TimeEmbedding(time_dim)
        self.conv_in = nn.Conv2d(in_ch, channels, 3, padding=1)
        widths = [channels * 2**i for i in range(levels)]
        self.down, skips = self._down_path(widths, blocks, time_dim, dropout)
        self.mid = nn.ModuleList([ResBlock(widths[-1], widths[-1], time_dim, dropout) for _ in range(2)])
        self.up = self._up_path(widths, blocks, skips, time_dim, dropout)
        self.norm_out, self.conv_out = group_norm(channels), nn.Conv2d(channels, in_ch, 3, padding=1)

    @staticmethod
    def _down_path(widths: list[int], blocks: int, time_dim: int, dropout: float) -> tuple[nn.ModuleList, list[int]]:
        layers, skips, ch = nn.ModuleList(), [widths[0]], widths[0]
        for i, width in enumerate(widths):
            for _ in range(blocks):
                layers.append(ResBlock(ch, width, time_dim, dropout))
                ch = width
                skips.append(ch)
            if i < len(widths) - 1:
                layers.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # halves H and W
                skips.append(ch)
        return layers, skips

    @staticmethod
    def _up_path(widths: list[int], blocks: int, skips: list[int], time_dim: int, dropout: float) -> nn.ModuleList:
        layers, ch, skips = nn.ModuleList(), widths[-1], list(skips)
        for i, width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                layers.append(ResBlock(ch + skips.pop(), width, time_dim, dropout))
                ch = width
            if i > 0:
                layers.append(
                    nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))
                )  # doubles H and W
        return layers

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), (B,) or (1,) -> same
        temb = F.silu(self.time(t))  # (B, time_dim)
        h = through_levels(self, self.conv_in(x), temb, ResBlock, channel_dim=1)
        return self.conv_out(F.silu(self.norm_out(h)))


def through_levels(
    net: Any, h: torch.Tensor, temb: torch.Tensor, block: type[nn.Module], channel_dim: int
) -> torch.Tensor:
    """The down, middle and up paths of `net` (a UNet or its ensemble) from conv_in's output h: layers of type `block`
    take the time embedding, and the up path joins each skip on `channel_dim` (1; 2 past an ensemble's members)."""
    hs = [h]
    for layer in net.down:
        h = layer(h, temb) if isinstance(layer, block) else layer(h)
        hs.append(h)
    for layer in net.mid:
        h = layer(h, temb)
    for layer in net.up:
        h = layer(torch.cat([h, hs.pop()], dim=channel_dim), temb) if isinstance(layer, block) else layer(h)
    return h
