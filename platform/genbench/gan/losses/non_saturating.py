"""Non-saturating GAN loss (Goodfellow et al. 2014): G maximises log D(G(z))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.gan import GAN_LOSSES
from genbench.gan.losses.base import GanLoss


@GAN_LOSSES.register("non_saturating", "cross-entropy D; G maximises log D(G(z)) (Goodfellow et al. 2014)")
class NonSaturating(GanLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # -log sigmoid(r) - log(1 - sigmoid(f)), written stably with softplus
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()
