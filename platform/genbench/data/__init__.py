"""Data sets by name: each entry builds a Dataset (tensors kept in memory) from a DataConfig."""
from __future__ import annotations

from typing import Any

from genbench.registry import Registry

# Every data set and the module that registers it: names are checked without importing torch (config checks,
# `genbench validate`); a module is imported when its data set is first loaded.
DATASETS: Registry[Any] = Registry("dataset", {
    "ring8": "genbench.data.toy2d", "grid25": "genbench.data.toy2d",
    "digits": "genbench.data.digits", "stacked_digits": "genbench.data.digits",
    "mnist": "genbench.data.downloads", "fashion_mnist": "genbench.data.downloads",
    "cifar10": "genbench.data.downloads", "celeba": "genbench.data.downloads",
    "files": "genbench.data.files",
})

__all__ = ["DATASETS", "Dataset", "load_dataset"]


def __getattr__(name: str) -> Any:
    """Dataset and load_dataset come from genbench.data.base, which imports torch: only when asked for."""
    if name in ("Dataset", "load_dataset"):
        from genbench.data import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
