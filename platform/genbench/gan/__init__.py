"""GAN components: losses, penalties and discriminator norms, each a small registered file; presets as data.

The registries declare every name and the module that registers it, so that a GAN config is checked without
importing torch (`genbench validate`); adding a component is its file plus its line here.
"""

from __future__ import annotations

from typing import Any

from genbench.registry import Registry

GAN_LOSSES: Registry[Any] = Registry(
    "GAN loss",
    {
        name: f"genbench.gan.losses.{name}"
        for name in ("non_saturating", "minimax", "least_squares", "wasserstein", "hinge")
    },
)
PENALTIES: Registry[Any] = Registry(
    "GAN penalty", {name: f"genbench.gan.penalties.{name}" for name in ("none", "gradient_penalty", "zero_gp", "r1")}
)
NORMS: Registry[Any] = Registry("discriminator norm", dict.fromkeys(("none", "spectral_norm"), "genbench.gan.norms"))

__all__ = ["GAN_LOSSES", "NORMS", "PENALTIES"]
