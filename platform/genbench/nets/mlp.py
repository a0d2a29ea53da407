"""MLP with a choice of activation (relu, leaky_relu, maxout), optional batch norm and a per-layer norm wrapper."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genbench.nets.activations import ACTIVATIONS

LayerNorm = Callable[[nn.Module], nn.Module]  # wraps a linear or conv layer, e.g. spectral norm


class Maxout(nn.Module):
    """Linear map to width*k units, then the max over each group of k: (B, in) -> (B, width)."""

    def __init__(self, linear: nn.Module, width: int, k: int) -> None:
        super().__init__()
        self.linear, self.width, self.k = linear, width, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)  # (B, width*k), or (B, width, k) after the view below
        return h.view(-1, self.width, self.k).amax(dim=-1)


def _hidden(
    in_dim: int, width: int, activation: str, maxout_k: int, batch_norm: bool, wrap: LayerNorm
) -> list[nn.Module]:
    pieces = maxout_k if activation == "maxout" else 1
    layers: list[nn.Module] = [wrap(nn.Linear(in_dim, width * pieces))]
    if batch_norm:
        layers.append(nn.BatchNorm1d(width * pieces))
    if activation == "maxout":
        return [Maxout(nn.Sequential(*layers), width, pieces)]
    layers.append(nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2))
    return layers


def mlp(
    in_dim: int,
    out_dim: int,
    depth: int,
    width: int,
    activation: str = "relu",
    maxout_k: int = 2,
    batch_norm: bool = False,
    wrap: LayerNorm = lambda layer: layer,
) -> nn.Sequential:
    """`depth` hidden layers of `width` units, then a linear output; `wrap` is applied to every linear layer."""
    ACTIVATIONS.get(activation)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += _hidden(in_dim if i == 0 else width, width, activation, maxout_k, batch_norm, wrap)
    layers.append(wrap(nn.Linear(width if depth else in_dim, out_dim)))
    return nn.Sequential(*layers)
