"""Invertible layers for RealNVP / Glow flows: ActNorm, LU 1x1 convolutions, affine couplings, squeeze, multi-scale."""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

from genbench.nets.mlp import mlp


class Invertible(Protocol):
    """A flow layer: forward gives (y, log|det|), inverse gives x back."""

    def inverse(self, y: torch.Tensor) -> torch.Tensor: ...


# Every layer here maps forward(x) -> (y, logdet (B,)) and inverse(y) -> x, for vectors (B, D) or images (B, C, H, W).


def _channel_view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-channel parameter (C,) shaped to broadcast over x: (1, C) or (1, C, 1, 1)."""
    return p.view(1, -1, *([1] * (x.dim() - 2)))


def _positions(x: torch.Tensor) -> int:
    """Spatial positions that share one per-channel parameter: H * W for images, 1 for vectors."""
    return int(x[0, 0].numel())


@torch.no_grad()
def start_from_batch(layer: Any, x: torch.Tensor, keep: tuple[int, ...]) -> None:
    """ActNorm's data-dependent start: bias and log_scale such that x's output has zero mean and unit variance over
    every axis but `keep` ((1,): the channels of (B, C, ...); an ensemble's (0, 2): each member's channels)."""
    dims = [d for d in range(x.dim()) if d not in keep]
    layer.bias.copy_(-x.mean(dim=dims))
    layer.log_scale.copy_(-torch.log(x.std(dim=dims, unbiased=False) + 1e-6))
    layer.initialized.fill_(True)
    layer.ready = True


class ActNorm(nn.Module):
    """Per-channel affine y = (x + b) * exp(log_scale) (Kingma & Dhariwal 2018).

    Data-dependent initialisation: the first batch seen in training mode sets b and log_scale so that
    that batch's output is zero-mean, unit-variance per channel; afterwards both are ordinary parameters.
    """

    initialized: torch.Tensor  # a buffer (register_buffer): moves and saves with the module

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))
        self.ready = False  # host copy of `initialized`: checking the buffer each step would sync a device
        self.register_load_state_dict_post_hook(_actnorm_loaded)

    def initialize(self, x: torch.Tensor) -> None:
        start_from_batch(self, x, keep=(1,))  # statistics over every axis but the channel axis

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.ready:
            self.initialize(x)
        y = (x + _channel_view(self.bias, x)) * _channel_view(self.log_scale.exp(), x)
        return y, (self.log_scale.sum() * _positions(x)).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * _channel_view((-self.log_scale).exp(), y) - _channel_view(self.bias, y)


def _actnorm_loaded(module: ActNorm, incompatible_keys: object) -> None:
    """After load_state_dict: a loaded, initialised ActNorm must not re-initialise (a module-level hook pickles)."""
    module.ready = bool(module.initialized)


class InvConv1x1(nn.Module):
    """Learned invertible channel mixing W = P L (U + diag(sign * exp(log_s))) (Glow's LU-decomposed 1x1 conv).

    LU rather than a plain weight with slogdet: log|det W| = sum(log_s) is O(C) and exact, W cannot pass
    through a singular matrix (its diagonal is exp(.) times a fixed sign), and the inverse is two
    triangular solves. For vectors (B, C) it is an invertible linear layer.
    """

    perm: torch.Tensor  # buffers
    sign: torch.Tensor
    lower_mask: torch.Tensor
    eye: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]  # random orthogonal start, log|det| = 0
        perm, lower, upper = torch.linalg.lu(rotation)
        diag = upper.diagonal()
        self.register_buffer("perm", perm)
        self.register_buffer("sign", diag.sign())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(diag.abs().log())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        lower = self.lower * self.lower_mask + self.eye  # unit lower triangular
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * self.log_s.exp())
        return lower, upper

    def weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        return self.perm @ lower @ upper  # (C, C)

    def inverse_weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        inv_lp = torch.linalg.solve_triangular(lower, self.perm.T, upper=False)  # L^-1 P^T
        return torch.linalg.solve_triangular(upper, inv_lp, upper=True)  # U^-1 L^-1 P^T

    @staticmethod
    def _mix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x @ w.T  # (B, C)
        return F.conv2d(x, w[:, :, None, None])  # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # fp32 even under bf16 autocast: log|det W| = sum(log_s) is the determinant of W, not of W rounded to bf16
        with torch.autocast(x.device.type, enabled=False):
            w = self.weight()  # the parameters' dtype: fp32, or fp64 where a test checks the Jacobian
            y = self._mix(x.to(w.dtype), w)  # x may arrive in bf16 from an autocast coupling
        return y, (self.log_s.sum() * _positions(x)).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._mix(y, self.inverse_weight())


class BoundedScale(nn.Module):
    """log s = scale * tanh(raw) with a learned per-channel scale (RealNVP): bounded, so exp(log s) cannot overflow."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return _channel_view(self.scale, raw) * torch.tanh(raw)


class MaskedCoupling(nn.Module):
    """Affine coupling y = x * exp(s(x_m)) + t(x_m) on the unmasked entries, x_m = x * mask (RealNVP).

    Vectors use an alternating coordinate mask, images a checkerboard. Images also feed the mask as an
    extra input channel, so that the net can tell masked positions from zero-valued ones at the border.
    """

    mask: torch.Tensor  # a buffer

    def __init__(self, mask: torch.Tensor, net: nn.Module, channels: int) -> None:
        super().__init__()
        self.register_buffer("mask", mask)  # (1, D) or (1, 1, H, W), 1 = conditioning entry
        self.net, self.log_scale = net, BoundedScale(channels)

    def _shift_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = x * self.mask
        if x.dim() == 4:
            cond = torch.cat([cond, self.mask.expand(len(x), 1, *x.shape[2:])], dim=1)  # (B, C + 1, H, W)
        raw, shift = self.net(cond).chunk(2, dim=1)
        free = 1.0 - self.mask  # s and t are zero on conditioning entries, which therefore pass unchanged
        return self.log_scale(raw) * free, shift * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_s, shift = self._shift_scale(x)
        return x * log_s.exp() + shift, log_s.flatten(1).sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        log_s, shift = self._shift_scale(y)  # y * mask == x * mask
        return (y - shift) * (-log_s).exp()


class ChannelCoupling(nn.Module):
    """Affine coupling across channels: one half of the channels conditions the other (RealNVP after a squeeze)."""

    def __init__(self, channels: int, net: nn.Module, flip: bool) -> None:
        super().__init__()
        self.split, self.flip = channels // 2, flip
        self.net, self.log_scale = net, BoundedScale(self.split if flip else channels - self.split)

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.split], x[:, self.split :]  # (B, C/2, H, W) each
        return (b, a) if self.flip else (a, b)  # (conditioning, transformed)

    def _join(self, cond: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        return torch.cat([moved, cond] if self.flip else [cond, moved], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond, moved = self._halves(x)
        raw, shift = self.net(cond).chunk(2, dim=1)
        log_s = self.log_scale(raw)
        return self._join(cond, moved * log_s.exp() + shift), log_s.flatten(1).sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        cond, moved = self._halves(y)
        raw, shift = self.net(cond).chunk(2, dim=1)
        return self._join(cond, (moved - shift) * (-self.log_scale(raw)).exp())


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 patch becomes 4 channels (volume preserving)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)  # (B, C, 2, 2, H/2, W/2)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        x = y.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)  # (B, C, H/2, 2, W/2, 2)
        return x.reshape(b, c4 // 4, 2 * h, 2 * w)


class FlowSequence(nn.Module):
    """Invertible layers in order; log-determinants add."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(len(x))
        for layer in self.layers:
            x, step_logdet = layer(x)
            logdet = logdet + step_logdet
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = cast(Invertible, layer).inverse(y)
        return y


def zero_last(net: nn.Sequential) -> nn.Sequential:
    """Zero the output layer, so that every coupling starts as the identity (stable start, Glow)."""
    last = net[-1]
    assert isinstance(last, (nn.Linear, nn.Conv2d)) and last.bias is not None, last  # as mlp() and conv_net() end
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net


def conv_net(in_ch: int, out_ch: int, hidden: int, depth: int) -> nn.Sequential:
    """Coupling conditioner for images: 3x3 conv, (depth - 1) 1x1 convs, 3x3 conv out (RealNVP / Glow's NN())."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, hidden, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(hidden, hidden, 1), nn.ReLU()]
    layers.append(nn.Conv2d(hidden, out_ch, 3, padding=1))
    return zero_last(nn.Sequential(*layers))


def _step(channels: int, coupling: nn.Module, invconv: bool) -> list[nn.Module]:
    """One flow step: ActNorm, then (where there is more than one channel) a 1x1 conv, then a coupling."""
    mixing = [InvConv1x1(channels)] if invconv and channels > 1 else []
    return [ActNorm(channels), *mixing, coupling]


def vector_flow(dim: int, couplings: int, hidden: int, depth: int, invconv: bool) -> FlowSequence:
    """RealNVP for vectors (B, D): coupling k transforms the coordinates of parity k % 2 given the others."""
    layers: list[nn.Module] = []
    parity = torch.arange(dim) % 2
    for k in range(couplings):
        mask = (parity != k % 2).float().view(1, dim)  # k even: condition on even coordinates
        net = zero_last(mlp(dim, 2 * dim, depth, hidden))
        layers += _step(dim, MaskedCoupling(mask, net, dim), invconv)
    return FlowSequence([*layers, ActNorm(dim)])


def checkerboard(height: int, width: int, parity: int) -> torch.Tensor:
    """(1, 1, H, W) mask, 1 where (i + j) % 2 == parity."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((rows + cols) % 2 == parity).float().view(1, 1, height, width)


class MultiScaleFlow(nn.Module):
    """RealNVP's multi-scale image flow; each scale: checkerboard couplings, squeeze, channel-wise couplings,
    then (but at the last scale) half of the channels are factored out to the standard-normal base.

    forward maps images (B, C, H, W) to one latent vector per image (B, C*H*W), the factored-out parts first.
    """

    def __init__(
        self, shape: tuple[int, int, int], scales: int, couplings: int, hidden: int, depth: int, invconv: bool
    ) -> None:
        super().__init__()
        channels, height, width = shape
        blocks: list[nn.Module] = []
        self.out_shapes: list[tuple[int, int, int]] = []  # shape of each latent piece, in forward order
        for i in range(scales):
            layers = self._checkerboard_steps(
                channels, height, width, couplings - couplings // 2, hidden, depth, invconv
            )
            channels, height, width = 4 * channels, height // 2, width // 2
            layers.append(Squeeze())
            layers += self._channel_steps(channels, couplings // 2, hidden, depth, invconv)
            blocks.append(FlowSequence(layers))
            out = channels // 2 if i < scales - 1 else channels
            self.out_shapes.append((out, height, width))
            channels -= out
        self.blocks = nn.ModuleList(blocks)

    @staticmethod
    def _checkerboard_steps(
        channels: int, height: int, width: int, n: int, hidden: int, depth: int, invconv: bool
    ) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for k in range(n):
            net = conv_net(channels + 1, 2 * channels, hidden, depth)  # +1: the mask channel
            layers += _step(channels, MaskedCoupling(checkerboard(height, width, k % 2), net, channels), invconv)
        return layers

    @staticmethod
    def _channel_steps(channels: int, n: int, hidden: int, depth: int, invconv: bool) -> list[nn.Module]:
        layers: list[nn.Module] = []
        half = channels // 2
        for k in range(n):
            moved = channels - half if k % 2 == 0 else half  # flip=False transforms the second half
            net = conv_net(channels - moved, 2 * moved, hidden, depth)
            layers += _step(channels, ChannelCoupling(channels, net, flip=k % 2 == 1), invconv)
        return layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pieces, logdet = [], x.new_zeros(len(x))
        for block, (out, _, _) in zip(self.blocks, self.out_shapes):
            x, block_logdet = block(x)
            logdet = logdet + block_logdet
            pieces.append(x[:, :out].flatten(1))  # factored out: (B, out * H * W)
            x = x[:, out:]
        return torch.cat(pieces, dim=1), logdet  # (B, D)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [c * h * w for c, h, w in self.out_shapes]
        pieces = [p.reshape(len(z), *s) for p, s in zip(z.split(sizes, dim=1), self.out_shapes)]
        x = pieces[-1][:, :0]  # (B, 0, H, W): nothing is left over after the last scale
        for block, piece in zip(reversed(self.blocks), reversed(pieces)):
            x = cast(Invertible, block).inverse(torch.cat([piece, x], dim=1))
        return x
