"""DCGAN-style convolutional nets for small square images: an upsampling generator and a downsampling encoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.nets.mlp import LayerNorm


def stages(size: int) -> int:
    """Number of x2 resolution steps between 2x2 and size x size (size a power of two >= 4)."""
    n = int(math.log2(size)) - 1
    if size < 4 or 2 ** (n + 1) != size:
        raise ValueError(f"image size must be a power of two >= 4, got {size}")
    return n


class ConvGenerator(nn.Module):
    """z (B, latent) -> images (B, C, S, S): a linear map to (width * 2^k, 2, 2), then k transposed convs."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        channels, size, _ = shape
        k = stages(size)
        top = width * 2 ** (k - 1)
        self.head = nn.Linear(latent_dim, top * 4)
        self.top = top
        layers: list[nn.Module] = [nn.BatchNorm2d(top) if batch_norm else nn.Identity(), nn.ReLU()]
        ch = top
        for i in range(k):
            last = i == k - 1
            out = channels if last else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))  # doubles H and W
            if not last:
                layers += [nn.BatchNorm2d(out) if batch_norm else nn.Identity(), nn.ReLU()]
            ch = out
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # (B, latent) -> (B, C, S, S), unbounded (callers add tanh / sigmoid)
        return self.body(self.head(z).view(-1, self.top, 2, 2))


class ConvEncoder(nn.Module):
    """images (B, C, S, S) -> (B, out): k strided convs with leaky ReLU down to 2x2, then a linear head."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        out_dim: int,
        width: int = 64,
        batch_norm: bool = False,
        wrap: LayerNorm = lambda layer: layer,
    ) -> None:
        super().__init__()
        channels, size, _ = shape
        layers: list[nn.Module] = []
        ch_in, ch = channels, width
        for i in range(stages(size)):
            layers.append(wrap(nn.Conv2d(ch_in, ch, 4, stride=2, padding=1)))  # halves H and W
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            ch_in, ch = ch, ch * 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = wrap(nn.Linear(ch_in * 4, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, S, S) -> (B, out_dim)
        return self.head(self.body(x))
