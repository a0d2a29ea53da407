"""Ensemble versions of the flow's layers (genbench.nets.coupling): S flows of one architecture on (S, B, D) or images.

Each layer maps (S, B, D) to ((S, B, D), log|det| (S, B)), every member by its own parameters, as its plain layer
maps (B, D) to ((B, D), (B,)); ActNorm, the 1x1 maps, the bounded scales and the masked (checkerboard) couplings also
map images (S, B, C, H, W), as their plain layers map (B, C, H, W); the image flow's other layers (channel-wise
couplings, squeeze, the multi-scale flow) are in genbench.nets.ensemble_conv_flow. Every tensor is member-major,
constants too (masks, identities): the member loop freezes a member by indexing each parameter and buffer at its
member (genbench.train.members.Frozen). Only the forward pass is here: the batched model trains; members are sampled
and scored through their plain flows, which `write(i, layer)` brings up to date.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.nets.coupling import ActNorm, BoundedScale, FlowSequence, InvConv1x1, MaskedCoupling, start_from_batch
from genbench.nets.ensemble import NotBatchable, stack, stacks, write_member


def _stacked(layers: list[Any], name: str) -> torch.Tensor:
    """Each member's tensor `name`, stacked member-major: (S, ...)."""
    return torch.stack([getattr(layer, name).detach() for layer in layers])


def _per_row(logdet: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A member's per-position log|det| (S,) times x's positions per channel (H * W of images, 1 of vectors), shared
    by its rows: (S, B), as the plain layers expand theirs to (B,)."""
    return (logdet * int(x[0, 0, 0].numel())).unsqueeze(1).expand(-1, x.shape[1])


def _member_view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-member, per-channel tensor (S, C) shaped to broadcast over x: (S, 1, C) or (S, 1, C, 1, 1)."""
    return p.view(p.shape[0], 1, -1, *([1] * (x.dim() - 3)))


class EnsembleActNorm(nn.Module):
    """S ActNorms: y = (x + b) * exp(log_scale) per member. The data-dependent initialisation sets each member's b and
    log_scale from that member's own first training batch, as its per-seed run's first step does."""

    initialized: torch.Tensor  # (S,) bool buffer

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        if len({layer.ready for layer in layers}) > 1:
            raise NotBatchable("the members' ActNorm layers differ in initialisation")
        self.bias = nn.Parameter(_stacked(layers, "bias"))  # (S, C)
        self.log_scale = nn.Parameter(_stacked(layers, "log_scale"))  # (S, C)
        self.register_buffer("initialized", _stacked(layers, "initialized"))
        self.ready = layers[0].ready  # host copy, as ActNorm.ready: no device sync per step

    def initialize(self, x: torch.Tensor) -> None:
        """x (S, B, C) or (S, B, C, H, W): each member's statistics over its own rows (and positions)."""
        start_from_batch(self, x, keep=(0, 2))  # every axis but the member and channel axes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.ready:
            self.initialize(x)
        y = (x + _member_view(self.bias, x)) * _member_view(self.log_scale.exp(), x)  # (S, B, C, ...)
        return y, _per_row(self.log_scale.sum(dim=1), x)

    def write(self, i: int, layer: ActNorm) -> None:
        layer.bias.data.copy_(self.bias[i])
        layer.log_scale.data.copy_(self.log_scale[i])
        layer.initialized.copy_(self.initialized[i])
        layer.ready = self.ready


class EnsembleInvConv1x1(nn.Module):
    """S LU-decomposed invertible linear maps W = P L (U + diag(sign * exp(log_s))), one batched matmul: (S, B, C), or
    on images (S, B, C, H, W) each member's 1x1 convolution (its W at every position)."""

    perm: torch.Tensor  # (S, C, C) buffers, each member's own (its random rotation's LU factors)
    sign: torch.Tensor  # (S, C)
    lower_mask: torch.Tensor  # (S, C, C): the same in every member, held per member (see the module docstring)
    eye: torch.Tensor  # (S, C, C)

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        for name in ("perm", "sign", "lower_mask", "eye"):
            self.register_buffer(name, _stacked(layers, name))
        self.lower = nn.Parameter(_stacked(layers, "lower"))  # (S, C, C)
        self.upper = nn.Parameter(_stacked(layers, "upper"))  # (S, C, C)
        self.log_s = nn.Parameter(_stacked(layers, "log_s"))  # (S, C)

    def weight(self) -> torch.Tensor:
        """(S, C, C): each member's W, the factors combined as InvConv1x1._factors combines them."""
        lower = self.lower * self.lower_mask + self.eye  # unit lower triangular
        upper = self.upper * self.lower_mask.transpose(1, 2) + torch.diag_embed(self.sign * self.log_s.exp())
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # fp32 even under bf16 autocast, as InvConv1x1.forward: log|det W| is that of W, not of W rounded
        with torch.autocast(x.device.type, enabled=False):
            w = self.weight()  # (S, C, C)
            y = self._mix(x.to(w.dtype), w)
        return y, _per_row(self.log_s.sum(dim=1), x)

    @staticmethod
    def _mix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return torch.bmm(x, w.transpose(1, 2))  # (S, B, C): x @ W^T per member
        return torch.einsum("soc,sbchw->sbohw", w, x)  # (S, B, C, H, W): W at every position, F.conv2d's 1x1 map

    def write(self, i: int, layer: InvConv1x1) -> None:
        for name in ("lower", "upper", "log_s"):
            getattr(layer, name).data.copy_(getattr(self, name)[i])


class EnsembleBoundedScale(nn.Module):
    """S bounded log-scales: log s = scale * tanh(raw), each member's per-channel scale (S, C)."""

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        self.scale = nn.Parameter(_stacked(layers, "scale"))  # (S, C)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return _member_view(self.scale, raw) * torch.tanh(raw)  # (S, B, C, ...)

    def write(self, i: int, layer: BoundedScale) -> None:
        layer.scale.data.copy_(self.scale[i])


class EnsembleMaskedCoupling(nn.Module):
    """S affine couplings, y = x * exp(s(x_m)) + t(x_m): on vectors each member's conditioner an ensemble MLP, on
    images (checkerboard masks) an ensemble conv net (genbench.nets.ensemble_conv) fed the mask as an extra channel."""

    mask: torch.Tensor  # (S, 1, D) or (S, 1, 1, H, W) buffer: 1 = conditioning entry, the same in every member

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        self.register_buffer("mask", _stacked(layers, "mask"))
        self.net = stack([layer.net for layer in layers])  # (S, B, D) -> (S, B, 2D); (S, B, C + 1, ...) -> 2C
        self.log_scale = EnsembleBoundedScale([layer.log_scale for layer in layers])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = x * self.mask
        if x.dim() == 5:  # images, as MaskedCoupling: the mask as one more channel, (S, B, C + 1, H, W)
            cond = torch.cat([cond, self.mask.expand(-1, x.shape[1], -1, -1, -1)], dim=2)
        raw, shift = self.net(cond).chunk(2, dim=2)  # (S, B, D) or (S, B, C, H, W) each
        free = 1.0 - self.mask  # s and t are zero on conditioning entries, which therefore pass unchanged
        log_s, shift = self.log_scale(raw) * free, shift * free
        return x * log_s.exp() + shift, log_s.flatten(2).sum(dim=2)  # (S, B, ...), (S, B)

    def write(self, i: int, layer: MaskedCoupling) -> None:
        write_member(self.net, i, layer.net)
        self.log_scale.write(i, layer.log_scale)


class EnsembleFlowSequence(nn.Module):
    """S flows' layers in order, on (S, B, D) or (S, B, C, H, W); each member's log-determinants add: (S, B)."""

    def __init__(self, flows: list[Any]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(stack([f.layers[j] for f in flows]) for j in range(len(flows[0].layers)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[:2])  # (S, B)
        for layer in self.layers:
            x, step_logdet = layer(x)
            logdet = logdet + step_logdet
        return x, logdet

    def write(self, i: int, layer: FlowSequence) -> None:
        for part, plain in zip(self.layers, layer.layers):
            write_member(part, i, plain)


# the plain layer each ensemble layer stands for (genbench.nets.ensemble.stack builds it from the members' layers)
stacks(ActNorm)(EnsembleActNorm)
stacks(InvConv1x1)(EnsembleInvConv1x1)
stacks(BoundedScale)(EnsembleBoundedScale)
stacks(MaskedCoupling)(EnsembleMaskedCoupling)
stacks(FlowSequence)(EnsembleFlowSequence)
