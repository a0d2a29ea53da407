"""Least-squares GAN loss (Mao et al. 2017) with targets 1 (real) and 0 (fake)."""

from __future__ import annotations

import torch

from genbench.gan import GAN_LOSSES
from genbench.gan.losses.base import GanLoss


@GAN_LOSSES.register("least_squares", "LSGAN: D regresses real to 1 and fake to 0; G pulls fakes to 1")
class LeastSquares(GanLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake_logits - 1).square().mean()
