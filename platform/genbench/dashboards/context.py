"""A results directory read into the Context that the dashboard pages and the family table (`genbench report`) use."""

from __future__ import annotations

from typing import Any

import pandas as pd

from genbench.dashboards.panels import Context
from genbench.errors import GenbenchError
from genbench.results.store import ResultsStore


def _optional_table(store: ResultsStore, name: str) -> pd.DataFrame | None:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(store.path(name), filesystem=store.fs).to_pandas()
    except FileNotFoundError:
        return None


def _summary(store: ResultsStore) -> dict[str, Any] | None:
    import yaml

    try:
        with store.fs.open_input_stream(store.path("summary.yaml")) as f:
            return yaml.safe_load(f.read().decode()) or {}
    except FileNotFoundError:
        return None


def load_context(results: str) -> Context:
    """The study, trials, history, summary.yaml and budget curve of a results directory."""
    store = ResultsStore(results)
    study = store.read_study()
    trials = store.read("trials").to_pandas()
    if trials.empty:
        raise GenbenchError(f"{store.path('trials')}: no trials yet; run a sweep into {results} first")
    history = store.read("history").to_pandas()
    if history.empty:
        history = pd.DataFrame({"trial_id": pd.Series(dtype=str), "step": pd.Series(dtype="int64")})
    return Context(
        trials, history, study, _summary(store), _optional_table(store, "budget_curve.parquet"), store.read_samples
    )
