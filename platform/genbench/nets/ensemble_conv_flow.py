"""Ensemble versions of the image flow's own layers (genbench.nets.coupling): channel-wise couplings, squeeze and the
multi-scale flow of S members on images (S, B, C, H, W).

The flow's other layers (ActNorm, the 1x1 maps, checkerboard couplings) take images in genbench.nets.ensemble_flow;
the coupling conditioners' convolutions are grouped ones (genbench.nets.ensemble_conv), one group per member. Every
tensor is member-major, as genbench.train.members.Frozen needs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.nets import ensemble_conv  # noqa: F401  # registers Conv2d's ensemble layer: the conditioners' convs
from genbench.nets.coupling import ChannelCoupling, MultiScaleFlow, Squeeze
from genbench.nets.ensemble import stack, stacks, write_member
from genbench.nets.ensemble_flow import EnsembleBoundedScale


@stacks(ChannelCoupling)
class EnsembleChannelCoupling(nn.Module):
    """S affine couplings across channels: one half of each member's channels conditions the other, by its own conv
    net and bounded scale, as ChannelCoupling on (B, C, H, W)."""

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        self.split, self.flip = layers[0].split, layers[0].flip
        self.net = stack([layer.net for layer in layers])  # (S, B, C_cond, H, W) -> (S, B, 2 C_moved, H, W)
        self.log_scale = EnsembleBoundedScale([layer.log_scale for layer in layers])

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, :, : self.split], x[:, :, self.split :]  # (S, B, C/2, H, W) each
        return (b, a) if self.flip else (a, b)  # (conditioning, transformed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond, moved = self._halves(x)
        raw, shift = self.net(cond).chunk(2, dim=2)
        log_s = self.log_scale(raw)
        moved = moved * log_s.exp() + shift
        y = torch.cat([moved, cond] if self.flip else [cond, moved], dim=2)
        return y, log_s.flatten(2).sum(dim=2)  # (S, B, C, H, W), (S, B)

    def write(self, i: int, layer: ChannelCoupling) -> None:
        write_member(self.net, i, layer.net)
        self.log_scale.write(i, layer.log_scale)


@stacks(Squeeze)
class EnsembleSqueeze(nn.Module):
    """Squeeze per member: (S, B, C, H, W) -> (S, B, 4C, H/2, W/2), each member's rows as Squeeze's rows."""

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        self.plain = Squeeze()  # stateless: one serves every member

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        members, rows = x.shape[:2]
        y, _ = self.plain(x.flatten(0, 1).contiguous())  # (S * B, 4C, H/2, W/2): Squeeze views its input
        return y.view(members, rows, *y.shape[1:]), x.new_zeros(members, rows)

    def write(self, i: int, layer: Squeeze) -> None:
        """Nothing to write: a squeeze holds no state."""


@stacks(MultiScaleFlow)
class EnsembleMultiScaleFlow(nn.Module):
    """S multi-scale image flows: images (S, B, C, H, W) -> each member's latent vector per image (S, B, C*H*W), the
    factored-out parts first, and its log|det| (S, B), as MultiScaleFlow.forward per member."""

    def __init__(self, flows: list[Any]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(stack([f.blocks[j] for f in flows]) for j in range(len(flows[0].blocks)))
        self.out_shapes: list[tuple[int, int, int]] = flows[0].out_shapes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pieces, logdet = [], x.new_zeros(x.shape[:2])
        for block, (out, _, _) in zip(self.blocks, self.out_shapes):
            x, block_logdet = block(x)
            logdet = logdet + block_logdet
            pieces.append(x[:, :, :out].flatten(2))  # factored out: (S, B, out * H * W)
            x = x[:, :, out:]
        return torch.cat(pieces, dim=2), logdet  # (S, B, D), (S, B)

    def write(self, i: int, flow: MultiScaleFlow) -> None:
        for block, plain in zip(self.blocks, flow.blocks):
            write_member(block, i, plain)
