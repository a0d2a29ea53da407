"""GAN losses by name; every loss has the same two methods on raw discriminator outputs (logits)."""
from __future__ import annotations

from genbench.gan.losses.base import GAN_LOSSES, GanLoss
from genbench.gan.losses import hinge, least_squares, minimax, non_saturating, wasserstein  # noqa: F401

__all__ = ["GAN_LOSSES", "GanLoss"]
