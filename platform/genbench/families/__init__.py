"""Generative model families by name, each behind the one Family protocol.

A family is two modules: configs/<name>.py holds its run keys and registers it (no torch, so that config checks and
`genbench validate` stay light), and <name>.py its networks and training step, imported when a run builds it.
"""

from __future__ import annotations

from typing import Any

import genbench.families.configs  # noqa: F401  (registers every family)
from genbench.families.spec import FAMILIES, FamilySpec

__all__ = ["FAMILIES", "Family", "FamilySpec"]


def __getattr__(name: str) -> Any:
    """The Family protocol lives with torch in genbench.families.base: imported only when asked for."""
    if name == "Family":
        from genbench.families.base import Family

        return Family
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
