"""Hinge GAN loss (Lim & Ye 2017; SAGAN, BigGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.gan import GAN_LOSSES
from genbench.gan.losses.base import GanLoss


@GAN_LOSSES.register("hinge", "D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G: -E[D(G(z))]")
class Hinge(GanLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
