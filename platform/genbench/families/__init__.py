"""Generative model families by name, each behind the one Family protocol."""
from __future__ import annotations

from genbench.families.base import FAMILIES, Family, FamilySpec
from genbench.families import gan as _gan  # noqa: F401  (registers 'gan')

__all__ = ["FAMILIES", "Family", "FamilySpec"]
