"""Wasserstein critic loss (Arjovsky et al. 2017); weight clipping applies when no penalty or norm bounds the critic."""

from __future__ import annotations

import torch

from genbench.gan import GAN_LOSSES
from genbench.gan.losses.base import GanLoss


@GAN_LOSSES.register("wasserstein", "critic maximises E[D(x)] - E[D(G(z))]; clipped unless penalised or normed")
class Wasserstein(GanLoss):
    clip_without_penalty = True

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
