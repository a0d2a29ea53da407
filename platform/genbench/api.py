"""The Python API: a results location as pandas frames and its best configuration, a study or one run from a dict,
dashboards. Re-exported by `genbench`; every heavy import (pyarrow, pandas, torch, Ray) waits for its first use."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genbench.errors import GenbenchError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from genbench.results.store import ResultsStore
    from genbench.sweep.engine import StudyOutcome
    from genbench.train.model import Model

PathLike = str | os.PathLike[str]
TRAIN_CONFIG = "run config"  # where errors in run_training's config say they are
JOINED = ("config_id", "family", "seed", "status")  # the trials columns history_with adds by default


@dataclass(frozen=True)
class Best:
    """A study's best configuration by its first objective (summary.yaml's `best`) and its rows."""

    config_id: str  # the configuration: its trials' `config_id` (their `trial_id` with one seed)
    family: str
    seeds: list[int]  # the seeds it trained under, one trial each
    config: dict[str, Any]  # every run key, typed (its first seed's `seed`): run_training(best.config) trains it again
    scores: dict[str, float | None]  # each objective, the mean over the seeds that measured it (None: none did)
    entry: dict[str, Any]  # summary.yaml's entry whole: status, `searched` and `not_default` keys as well
    trials: pd.DataFrame  # every seed's `trials` row
    history: pd.DataFrame  # every seed's `history` rows (trial_id, step, train.* and eval.* values)


class Results:
    """A study's results (a path or a pyarrow.fs URI such as s3://bucket/prefix) as pandas frames and dicts.

    Each is read on first use and kept. `trials` holds every family's columns (ResultsStore takes the union of
    the parts' schemas; a column another family has is null in this family's rows); damaged parts are skipped
    with a warning (see `skipped`), and parts set aside as `_corrupt-*` are never read."""

    def __init__(self, location: PathLike) -> None:
        from genbench.results.store import ResultsStore

        self.location = os.fspath(location)
        self.store: ResultsStore = ResultsStore(self.location)
        _ = self.study  # read now: a location without study.yaml fails here, saying so

    def __repr__(self) -> str:
        return f"Results({self.location!r})"

    @functools.cached_property
    def study(self) -> dict[str, Any]:
        """study.yaml: the resolved study, its budget, constants, space, resources and versions."""
        return self.store.read_study()

    @functools.cached_property
    def summary(self) -> dict[str, Any] | None:
        """summary.yaml: configurations by status, best, Pareto front, importances, early-stopping savings,
        warnings; None before a sweep has finished (and for `genbench train` results, which have none)."""
        return self.store.read_summary()

    @functools.cached_property
    def trials(self) -> pd.DataFrame:
        """One row per run (docs/results.md lists the columns)."""
        return self.store.read("trials").to_pandas()

    @functools.cached_property
    def history(self) -> pd.DataFrame:
        """One row per (trial_id, step) report: train.* window means, and eval.* values on evaluation steps."""
        return self.store.read("history").to_pandas()

    @functools.cached_property
    def configurations(self) -> pd.DataFrame:
        """One row per configuration: its seeds' metrics averaged, its config.* keys, status, seeds and steps."""
        from genbench.results.analysis import configurations

        return configurations(self.trials)

    @functools.cached_property
    def budget_curve(self) -> pd.DataFrame | None:
        """budget_curve.parquet: expected best objective after n trials; None where the study wrote none."""
        table = self.store.read_optional_table("budget_curve.parquet")
        return table.to_pandas() if table is not None else None

    @property
    def skipped(self) -> dict[str, str]:
        """Parts that could not be read (path -> why), found by reading `trials` and `history`."""
        return dict(self.store.skipped)

    def rows(self, config_id: str) -> pd.DataFrame:
        """The `trials` rows of one configuration: one per seed."""
        trials = self.trials
        ids = trials["config_id"].fillna(trials["trial_id"]) if "config_id" in trials else trials["trial_id"]
        return trials[(ids == config_id).to_numpy()].reset_index(drop=True)

    def history_of(self, config_id: str) -> pd.DataFrame:
        """The `history` rows of one configuration's runs, by trial and step."""
        runs = set(self.rows(config_id)["trial_id"])
        history = self.history
        if history.empty:
            return history
        found = history[history["trial_id"].isin(runs)]
        return found.sort_values(["trial_id", "step"], kind="stable").reset_index(drop=True)

    def history_with(self, *columns: str) -> pd.DataFrame:
        """`history` with `trials` columns of each report's run beside it (joined on trial_id): by default
        config_id, family, seed and status (those the rows have); a column asked for that no row has is an error
        naming it."""
        wanted = list(columns) or [c for c in JOINED if c in self.trials]
        missing = [c for c in wanted if c not in self.trials]
        if missing:
            raise GenbenchError(f"{self.store.path('trials')}: no column {', '.join(missing)} (see .trials.columns)")
        if "trial_id" not in self.history:  # no history yet
            return self.history
        runs = self.trials[["trial_id", *(c for c in wanted if c != "trial_id")]]
        return self.history.merge(runs, on="trial_id", how="left", validate="many_to_one")

    @functools.cached_property
    def best(self) -> Best | None:
        """The best configuration by the study's first objective, from summary.yaml; None when no configuration
        measured it, and before a sweep has finished (no summary.yaml)."""
        entry = (self.summary or {}).get("best")
        if not entry:
            return None
        config_id = str(entry["config_id"])
        rows = self.rows(config_id)
        metrics = [o["metric"] for o in (self.summary or {}).get("objectives") or []]
        return Best(
            config_id=config_id,
            family=str(entry["family"]),
            seeds=sorted(int(s) for s in rows["seed"].dropna()) if "seed" in rows else [],
            config=dict(entry.get("config") or {}),
            scores={m: entry.get(m) for m in metrics},
            entry=entry,
            trials=rows,
            history=self.history_of(config_id),
        )

    def model(
        self, trial: str | None = None, *, config: str | None = None, seed: int | None = None, device: str | None = None
    ) -> Model:
        """A run's kept model (models/<trial_id>.pt) rebuilt on its data set: `.sample(n)`, `.evaluate(settings)`,
        `.family`, `.config`. The run is `trial`, else `config`'s under `seed` (default its first seed), else the
        best configuration's; `device` ('cpu', 'cuda') instead of its train.device. A run without a model (saving
        turned off, results older than kept models, a diverged or stopped run) is a GenbenchError saying why."""
        from genbench.results.models import model_bytes, pick_trial
        from genbench.train.model import load

        trial_id = pick_trial(self, trial, config, seed)
        return load(model_bytes(self, trial_id), trial_id, self.store.path("models", f"{trial_id}.pt"), device)

    def sample(
        self, n: int, trial: str | None = None, *, config: str | None = None, seed: int | None = None
    ) -> torch.Tensor:
        """n samples of a kept model (chosen as `model` chooses), on the CPU: (n, D), or images (n, C, H, W) in
        [0, 1]; their noise is the run's evaluation stream, so n = eval.n_samples gives the samples it scored last."""
        return self.model(trial, config=config, seed=seed).sample(n)

    def evaluate(
        self,
        trial: str | None = None,
        *,
        config: str | None = None,
        seed: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """quality.* and provenance.* of a kept model (chosen as `model` chooses) under its run's eval.* settings
        with `settings` (eval.n_samples, eval.features, eval.inception_weights) instead: none gives the row's own
        final quality again."""
        return self.model(trial, config=config, seed=seed).evaluate(settings)

    def write_dashboards(self) -> str:
        """Rebuild the HTML dashboards from these results; returns the index page's path (or URI)."""
        return write_dashboards(self.location)


def load_results(location: PathLike) -> Results:
    """The results at `location` (a path, or a URI such as s3://bucket/prefix): `.trials`, `.history`, `.study`,
    `.summary`, `.best`; a location without study.yaml is a GenbenchError saying so."""
    return Results(location)


def write_dashboards(location: PathLike) -> str:
    """Rebuild the HTML dashboards of a results location, as `genbench dashboard` does; returns the index page."""
    from genbench.dashboards.site import write_dashboards as write

    return write(os.fspath(location))


def run_study(
    study: dict[str, Any] | PathLike,
    *,
    dry_run: bool = False,
    out: PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
    address: str | None = None,
    max_failures: int | None = None,
    cluster: PathLike | None = None,
) -> StudyOutcome:
    """Run a study (a dict with a study file's content, a study file's path or a shipped study's name) as
    `genbench sweep` does, or at its dry_run budget with `dry_run=True`, then its dashboards; returns the engine's
    StudyOutcome (`.best`, `.summary`, `.counts`, `.out`, `.lines()`). Progress is printed as it goes.

    A dict is validated as a file is: a problem is a ConfigError naming 'study dict' and the key. `overrides`
    are the run keys `--set` gives (`resources.*` too); `out` defaults to results/<study>[-dry-run]."""
    from genbench.sweep.engine import run_study as run
    from genbench.sweep.spec import study_from_dict

    space = study_from_dict(study) if isinstance(study, dict) else os.fspath(study)
    return run(
        space,
        dry_run,
        os.fspath(out) if out is not None else None,
        overrides or {},
        resume=resume,
        address=address,
        max_failures=max_failures,
        cluster=os.fspath(cluster) if cluster is not None else None,
    )


def run_training(
    config: dict[str, Any], report: Callable[[int, dict[str, float]], None] | None = None
) -> dict[str, Any]:
    """Train one run in this process from its flat run keys (`family` and any key of `genbench list keys`; the rest
    at their defaults) and return its row: status, quality.*, likelihood.*, stability.*, cost.* (and `samples`, the
    final samples encoded). `report(step, values)` receives every training report, as history rows are made.

    Bad keys or data raise a ConfigError naming the key before anything trains; a diverged or crashed run is a row
    with that status. Nothing is written: `genbench train` writes a run as a one-trial study."""
    from genbench.train.run import run

    flat = dict(config)
    where = dict.fromkeys(flat, TRAIN_CONFIG)
    return run(flat, report, where) if report is not None else run(flat, where=where)
