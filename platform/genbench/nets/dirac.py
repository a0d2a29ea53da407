"""The Dirac-GAN of Mescheder et al. 2018 (Section 2.2): a generator of one parameter and a linear critic of one."""

from __future__ import annotations

import torch
from torch import nn

START = 1.0  # theta and psi start here, away from the equilibrium (0, 0), so every variant has a way to go


class DiracGenerator(nn.Module):
    """G(z) = theta for every z: the generated distribution is a point mass at theta. (B, latent) -> (B, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([START]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.theta.expand(len(z), 1)  # (B, 1); the noise is ignored


class LinearCritic(nn.Module):
    """D(x) = psi * x, no bias: the discriminator of the Dirac-GAN. (B, 1) -> (B, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.psi = nn.Parameter(torch.tensor([START]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi  # (B, 1)
