"""Original minimax GAN loss: G minimises log(1 - D(G(z))), which saturates when D wins."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.gan import GAN_LOSSES
from genbench.gan.losses.base import GanLoss


@GAN_LOSSES.register("minimax", "cross-entropy D; G minimises log(1 - D(G(z))) (saturating)")
class Minimax(GanLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(f)) = -softplus(f)
        return -F.softplus(fake_logits).mean()
