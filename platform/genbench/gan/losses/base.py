"""The GAN loss interface: d_loss(real_logits, fake_logits) and g_loss(fake_logits), both scalars."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class GanLoss(ABC):
    """Base of every GAN loss. Logits are (B, 1) raw discriminator outputs; both methods return 0-dim tensors."""

    clip_without_penalty = False  # the critic needs a Lipschitz bound; clip weights if nothing else gives one

    @abstractmethod
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor: ...
