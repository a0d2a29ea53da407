"""Ensemble version of diffusion's vector denoiser (genbench.nets.unet.TimeMLP), registered with nets.ensemble."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from genbench.nets.ensemble import stack, stacks, write_member
from genbench.nets.unet import TimeMLP, timestep_embedding


class EnsembleTimeMLP(nn.Module):
    """S TimeMLPs: x (S, B, D) and t (S, B) -> (S, B, D), each member's layers its own (batched matmuls).

    The sinusoidal embedding has no parameters: it runs on the S * B timesteps at once, element by element as one
    member's call runs it; each Linear (the time embedding's MLP, input, hidden, time projections, output) is an
    EnsembleLinear."""

    def __init__(self, nets: list[TimeMLP]) -> None:
        super().__init__()
        self.time_dim = nets[0].time.dim
        self.time_mlp = stack([n.time.mlp for n in nets])
        self.inp, self.out = stack([n.inp for n in nets]), stack([n.out for n in nets])
        self.hidden = nn.ModuleList(stack([n.hidden[j] for n in nets]) for j in range(len(nets[0].hidden)))
        self.time_proj = nn.ModuleList(stack([n.time_proj[j] for n in nets]) for j in range(len(nets[0].time_proj)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (S, B, D), (S, B) -> (S, B, D)
        members, rows = t.shape
        sinusoids = timestep_embedding(t.reshape(-1), self.time_dim).view(members, rows, -1)  # (S, B, time_dim)
        temb = F.silu(self.time_mlp(sinusoids))  # (S, B, time_dim)
        h = F.silu(self.inp(x) + self.time_proj[0](temb))  # (S, B, width)
        for layer, proj in zip(self.hidden, self.time_proj[1:]):
            h = F.silu(layer(h) + proj(temb))
        return self.out(h)

    def write(self, i: int, net: Any) -> None:
        """Member i's weights into `net`, a TimeMLP of the same shape."""
        pairs = [(self.time_mlp, net.time.mlp), (self.inp, net.inp), (self.out, net.out)]
        pairs += [*zip(self.hidden, net.hidden), *zip(self.time_proj, net.time_proj)]
        for ensemble, plain in pairs:
            write_member(ensemble, i, plain)


stacks(TimeMLP)(EnsembleTimeMLP)
