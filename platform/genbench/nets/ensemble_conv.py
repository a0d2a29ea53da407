"""Ensemble convolutional layers: S conv nets of one architecture (the GAN's DCGAN nets) with a member dimension.

Every layer maps (S, B, C, H, W) to (S, B, C', H', W'). A convolution runs as one grouped convolution whose groups
are the members: the input is read as (B, S * C, H, W), each member's C channels one group, and the output
(B, S * C', H', W') is handed on as its (S, B, C', H', W') transposed view, so that the next layer reads it as
(B, S * C', ...) again without a copy. Batch norm keeps each member's statistics (genbench.nets.ensemble
EnsembleBatchNorm, S * C channels of one call); spectral norm runs each member's power iteration over its weight's
(out, in * k * k) matrix, as torch's spectral_norm does for a conv weight.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genbench.nets.conv import ConvEncoder, ConvGenerator
from genbench.nets.ensemble import (
    EnsembleBatchNorm,
    NotBatchable,
    _spectral,
    _weight,
    spectral_sigma,
    stack,
    stacks,
    write_member,
    write_weights,
)


@stacks(nn.Conv2d, nn.ConvTranspose2d)
class EnsembleConv(nn.Module):
    """S Conv2d (or ConvTranspose2d) layers: (S, B, C, H, W) -> (S, B, C', H', W') as one convolution with S groups;
    optional per-member spectral norm (Conv2d: dim 0, as the discriminator wraps its layers)."""

    u: torch.Tensor  # (S, out) buffers under spectral norm
    v: torch.Tensor  # (S, in * k * k)

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        first = layers[0]
        if first.groups != 1 or first.padding_mode != "zeros" or isinstance(first.padding, str):
            raise NotBatchable(f"a {type(first).__name__} with groups, a padding mode or string padding")
        self.transposed = isinstance(first, nn.ConvTranspose2d)
        # (S, out, in, k, k); ConvTranspose2d holds (in, out, k, k) per member: (S, in, out, k, k)
        self.weight = nn.Parameter(torch.stack([_weight(layer).detach() for layer in layers]).contiguous())
        biases: list[Any] = [layer.bias for layer in layers]
        self.bias = nn.Parameter(torch.stack([b.detach() for b in biases])) if biases[0] is not None else None
        self.options: dict[str, Any] = {"stride": first.stride, "padding": first.padding, "dilation": first.dilation}
        if self.transposed:
            self.options["output_padding"] = first.output_padding
        norms: list[Any] = [_spectral(layer) for layer in layers]
        self.spectral = norms[0] is not None
        if self.spectral:
            if self.transposed:  # torch normalises a transposed conv's weight over dim 1; the GAN never asks for it
                raise NotBatchable("spectral norm on a ConvTranspose2d")
            self.eps, self.iterations = norms[0].eps, norms[0].n_power_iterations
            self.register_buffer("u", torch.stack([n._u for n in norms]))  # (S, out)
            self.register_buffer("v", torch.stack([n._v for n in norms]))  # (S, in * k * k)

    def effective_weight(self) -> torch.Tensor:
        """The members' weights, each divided by its spectral norm estimate under spectral norm: (S, out, in, k, k)."""
        if not self.spectral:
            return self.weight
        matrix = self.weight.flatten(2)  # (S, out, in * k * k): torch's weight matrix of a conv, per member
        sigma = spectral_sigma(matrix, self.u, self.v, self.eps, self.iterations, self.training)  # (S,)
        return self.weight / sigma.view(-1, 1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, rows = x.shape[:2]
        flat = x.transpose(0, 1).reshape(rows, -1, *x.shape[3:])  # (B, S * C, H, W): member i's channels group i
        weight = self.effective_weight().flatten(0, 1)  # (S * out, in, k, k); transposed (S * in, out, k, k)
        bias = self.bias.flatten() if self.bias is not None else None  # (S * out,)
        conv = F.conv_transpose2d if self.transposed else F.conv2d
        out = conv(flat, weight, bias, groups=members, **self.options)  # (B, S * out, H', W')
        return out.view(rows, members, -1, *out.shape[2:]).transpose(0, 1)  # (S, B, out, H', W'), a view

    def write(self, i: int, layer: Any) -> None:
        write_weights(self, i, layer)


stacks(nn.BatchNorm2d)(EnsembleBatchNorm)  # (S, B, C, H, W): S * C channels of one batch_norm call


@stacks(nn.Flatten)
class EnsembleFlatten(nn.Module):
    """nn.Flatten per member: its dimensions shifted past the member dimension, (S, B, C, H, W) -> (S, B, C*H*W)."""

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        start, self.end = layers[0].start_dim, layers[0].end_dim
        self.start = start + 1 if start >= 0 else start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.start, self.end)

    def write(self, i: int, layer: nn.Flatten) -> None:
        """Nothing to write: a flatten holds no state."""


@stacks(ConvGenerator)
class EnsembleConvGenerator(nn.Module):
    """S ConvGenerators: z (S, B, latent) -> images (S, B, C, H, W), unbounded as ConvGenerator's."""

    def __init__(self, nets: list[Any]) -> None:
        super().__init__()
        self.head, self.body, self.top = stack([n.head for n in nets]), stack([n.body for n in nets]), nets[0].top

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z)  # (S, B, top * 4)
        return self.body(h.view(*h.shape[:2], self.top, 2, 2))  # (S, B, top, 2, 2) -> (S, B, C, H, W)

    def write(self, i: int, net: ConvGenerator) -> None:
        write_member(self.head, i, net.head)
        write_member(self.body, i, net.body)


@stacks(ConvEncoder)
class EnsembleConvEncoder(nn.Module):
    """S ConvEncoders (the discriminator): images (S, B, C, H, W) -> (S, B, out)."""

    def __init__(self, nets: list[Any]) -> None:
        super().__init__()
        self.body, self.head = stack([n.body for n in nets]), stack([n.head for n in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (S, B, C, H, W) -> (S, B, C' * 4) -> (S, B, out)

    def write(self, i: int, net: ConvEncoder) -> None:
        write_member(self.body, i, net.body)
        write_member(self.head, i, net.head)
