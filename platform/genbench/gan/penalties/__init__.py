"""Discriminator penalties by name; every penalty is penalty(d, real, fake) -> unweighted scalar."""
from __future__ import annotations

from genbench.gan.penalties.base import PENALTIES, Penalty
from genbench.gan.penalties import gradient_penalty, none, r1  # noqa: F401

__all__ = ["PENALTIES", "Penalty"]
