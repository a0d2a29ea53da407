"""Results store: study.yaml, trials and history Parquet, written atomically, local paths or pyarrow.fs URIs."""
from __future__ import annotations

from genbench.results.store import ResultsStore, safe_name

__all__ = ["ResultsStore", "safe_name"]
