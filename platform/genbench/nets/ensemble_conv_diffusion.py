"""Ensemble version of diffusion's image denoiser (genbench.nets.unet.UNet): S U-Nets with a member dimension.

Every layer maps (S, B, C, H, W) to (S, B, C', H', W'). Convolutions are genbench.nets.ensemble_conv's grouped
convolutions (member i's channels group i); GroupNorm runs as one group_norm call of S * G groups over the members'
channels side by side (each member's G groups cover its own C channels, so its statistics are its own); nearest
upsampling has no parameters and runs on the S * B images at once; the time embedding's MLP and each residual
block's time projection are ensemble linear layers on the members' (S, B, time_dim) embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genbench.nets import ensemble_conv  # noqa: F401  registers Conv2d with stack()
from genbench.nets.ensemble import NotBatchable, stack, stacks, write_member
from genbench.nets.unet import ResBlock, UNet, through_levels, timestep_embedding


@stacks(nn.GroupNorm)
class EnsembleGroupNorm(nn.Module):
    """S GroupNorm layers of G groups: (S, B, C, H, W) read as (B, S * C, H, W) and normalised in S * G groups, so
    that member i's groups are its own channels, as its own call groups them."""

    def __init__(self, layers: list[nn.GroupNorm]) -> None:
        super().__init__()
        first = layers[0]
        if not first.affine:
            raise NotBatchable("GroupNorm without affine parameters")
        self.groups, self.eps = first.num_groups, first.eps
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))  # (S, C)
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))  # (S, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, rows, channels, *spatial = x.shape
        flat = x.transpose(0, 1).reshape(rows, members * channels, *spatial)  # (B, S * C, H, W)
        out = F.group_norm(flat, members * self.groups, self.weight.reshape(-1), self.bias.reshape(-1), self.eps)
        return out.view(rows, members, channels, *spatial).transpose(0, 1)  # (S, B, C, H, W), a view

    def write(self, i: int, layer: nn.GroupNorm) -> None:
        layer.weight.data.copy_(self.weight[i])
        layer.bias.data.copy_(self.bias[i])


@stacks(nn.Upsample)
class EnsembleUpsample(nn.Module):
    """nn.Upsample per member: (S, B, C, H, W) -> (S, B, C, H * f, W * f) over the S * B images at once."""

    def __init__(self, layers: list[nn.Upsample]) -> None:
        super().__init__()
        self.plain = layers[0]  # no state: one instance serves every member

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.plain(x.flatten(0, 1))  # (S * B, C, H', W')
        return out.view(*x.shape[:2], *out.shape[1:])

    def write(self, i: int, layer: nn.Upsample) -> None:
        """Nothing to write: upsampling holds no state."""


@stacks(nn.Dropout)
def _dropout(layers: list[Any]) -> nn.Module:
    """Dropout at rate 0 is the identity; a positive rate draws its masks from torch's global generator in the
    per-seed run, which the members' own generators cannot reproduce (diffusion's unsupported() says so first)."""
    if layers[0].p > 0:
        raise NotBatchable("dropout: its masks come from torch's global generator")
    return nn.Identity()


@stacks(ResBlock)
class EnsembleResBlock(nn.Module):
    """S ResBlocks: x (S, B, Ci, H, W) and the time embedding (S, B, T) -> (S, B, Co, H, W)."""

    def __init__(self, blocks: list[Any]) -> None:
        super().__init__()
        self.norm1, self.conv1 = stack([b.norm1 for b in blocks]), stack([b.conv1 for b in blocks])
        self.time_proj = stack([b.time_proj for b in blocks])
        self.norm2, self.conv2 = stack([b.norm2 for b in blocks]), stack([b.conv2 for b in blocks])
        self.dropout, self.skip = stack([b.dropout for b in blocks]), stack([b.skip for b in blocks])

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (S, B, Co, H, W)
        h = h + self.time_proj(temb)[..., None, None]  # (S, B, Co, 1, 1): each member's time shift
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h

    def write(self, i: int, block: Any) -> None:
        for name in ("norm1", "conv1", "time_proj", "norm2", "conv2", "skip"):
            write_member(getattr(self, name), i, getattr(block, name))


@stacks(UNet)
class EnsembleUNet(nn.Module):
    """S UNets: x (S, B, C, H, W) and t (S, B) -> (S, B, C, H, W); the sinusoids run on the S * B timesteps at once."""

    def __init__(self, nets: list[Any]) -> None:
        super().__init__()
        self.time_dim = nets[0].time.dim
        self.time_mlp = stack([n.time.mlp for n in nets])
        self.conv_in, self.conv_out = stack([n.conv_in for n in nets]), stack([n.conv_out for n in nets])
        self.norm_out = stack([n.norm_out for n in nets])
        self.down, self.mid, self.up = (
            nn.ModuleList(stack([getattr(n, path)[j] for n in nets]) for j in range(len(getattr(nets[0], path))))
            for path in ("down", "mid", "up")
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (S, B, C, H, W), (S, B) -> same
        members, rows = t.shape
        sinusoids = timestep_embedding(t.reshape(-1), self.time_dim).view(members, rows, -1)  # (S, B, time_dim)
        temb = F.silu(self.time_mlp(sinusoids))  # (S, B, time_dim)
        h = through_levels(self, self.conv_in(x), temb, EnsembleResBlock, channel_dim=2)  # (S, B, channels, H, W)
        return self.conv_out(F.silu(self.norm_out(h)))

    def write(self, i: int, net: Any) -> None:
        """Member i's weights into `net`, a UNet of the same shape."""
        pairs = [(self.time_mlp, net.time.mlp), (self.conv_in, net.conv_in), (self.conv_out, net.conv_out)]
        pairs += [(self.norm_out, net.norm_out), *zip(self.down, net.down), *zip(self.mid, net.mid)]
        for ensemble, plain in [*pairs, *zip(self.up, net.up)]:
            write_member(ensemble, i, plain)
