"""Generative model families by name, each behind the one Family protocol; one module per family registers itself."""
from __future__ import annotations

import importlib
import pkgutil

from genbench.families.base import FAMILIES, Family, FamilySpec

# Adding a family is adding one module here: every module but base (and private _modules) is imported.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["FAMILIES", "Family", "FamilySpec"]
