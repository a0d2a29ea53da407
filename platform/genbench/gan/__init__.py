"""GAN components: losses, penalties and discriminator norms, each a small registered file; presets as data."""
from __future__ import annotations

from genbench.gan.losses import GAN_LOSSES
from genbench.gan.norms import NORMS
from genbench.gan.penalties import PENALTIES

__all__ = ["GAN_LOSSES", "NORMS", "PENALTIES"]
