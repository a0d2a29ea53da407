"""Data sets by name: each entry builds a Dataset (tensors kept in memory) from a DataConfig."""

from __future__ import annotations

from typing import Any

from genbench.data.names import DATA_KEYS, DATASETS

__all__ = ["DATASETS", "DATA_KEYS", "Dataset", "load_dataset"]


def __getattr__(name: str) -> Any:
    """Dataset and load_dataset come from genbench.data.base, which imports torch: only when asked for."""
    if name in ("Dataset", "load_dataset"):
        from genbench.data import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
