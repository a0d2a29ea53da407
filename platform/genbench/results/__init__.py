"""Results store: study.yaml, trials and history Parquet, written atomically, local paths or pyarrow.fs URIs."""

from __future__ import annotations

from typing import Any

from genbench.results.names import safe_name

__all__ = ["ResultsStore", "safe_name"]


def __getattr__(name: str) -> Any:
    """ResultsStore needs pyarrow: imported only when asked for (validating a study needs safe_name alone)."""
    if name == "ResultsStore":
        from genbench.results.store import ResultsStore

        return ResultsStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
