"""Every family's run keys (config sections, checks, registration), torch-free: one module per family, and optim.py,
the optimiser section they share."""

from __future__ import annotations

import importlib
import pkgutil

# Adding a family is adding its module here (and its networks in genbench/families/<name>.py): every module is imported.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
