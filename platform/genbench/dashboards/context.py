"""A results directory read into the Context that the dashboard pages and the family table (`genbench report`) use."""

from __future__ import annotations

import pandas as pd

from genbench.dashboards.panels import Context
from genbench.errors import GenbenchError
from genbench.results.store import ResultsStore


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
    curve = store.read_optional_table("budget_curve.parquet")
    return Context(
        trials,
        history,
        study,
        store.read_summary(),
        curve.to_pandas() if curve is not None else None,
        store.read_samples,
    )
