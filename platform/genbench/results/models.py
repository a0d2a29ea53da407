"""Which kept model a command means (a trial, a configuration's seed, the best configuration) and its file's bytes,
each missing piece one error saying why; torch-free (genbench.train.model rebuilds the model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genbench.errors import ConfigError, GenbenchError, suggest

if TYPE_CHECKING:
    import pandas as pd

    from genbench.api import Results

RETRAIN = (
    "to sample from a configuration, train it again (genbench.run_training(results.best.config), `genbench train`)"
)


def pick_trial(results: Results, trial: str | None, config: str | None, seed: int | None) -> str:
    """The trial_id of `trial`; else of `config`'s run under `seed` (default its first seed); else of the best
    configuration's (a `genbench train` result's one run)."""
    if trial is not None and (config is not None or seed is not None):
        raise ConfigError(
            "--trial names one run already", key="--trial", fix="give --trial alone, or --config with --seed"
        )
    ids = [str(t) for t in results.trials["trial_id"]] if "trial_id" in results.trials else []
    if trial is not None:
        if trial not in ids:
            raise GenbenchError(
                f"{results.location}: --trial: no trial {trial!r} ({suggest(trial, ids) if ids else 'it has none'})"
            )
        return trial
    rows = _config_rows(results, config, ids)
    return _seed_row(rows, seed, results.location)


def _config_rows(results: Results, config: str | None, ids: list[str]) -> pd.DataFrame:
    """The rows of `config`, else of the best configuration, else of a results' only run."""
    if config is not None:
        rows = results.rows(config)
        if rows.empty:
            known = sorted({str(c) for c in results.configurations.get("config_id", [])})
            raise GenbenchError(f"{results.location}: --config: no configuration {config!r} ({suggest(config, known)})")
        return rows
    if results.best is not None:
        return results.best.trials
    if len(ids) == 1:  # `genbench train` results: one run, no summary
        return results.trials
    raise GenbenchError(
        f"{results.location}: no best configuration (summary.yaml names none: the sweep has not finished, or no "
        "configuration measured the first objective); give --trial ID or --config ID"
    )


def _seed_row(rows: pd.DataFrame, seed: int | None, location: str) -> str:
    if seed is None:
        ordered = rows.sort_values("seed", kind="stable") if "seed" in rows else rows
        return str(ordered["trial_id"].iloc[0])
    match = rows[rows["seed"] == seed] if "seed" in rows else rows.iloc[:0]
    if match.empty:
        seeds = sorted(int(s) for s in rows["seed"].dropna()) if "seed" in rows else []
        raise GenbenchError(f"{location}: --seed: the configuration has no seed {seed} (its seeds: {seeds})")
    return str(match["trial_id"].iloc[0])


def model_bytes(results: Results, trial_id: str) -> bytes:
    """The bytes of the trial's kept model (models/<trial_id>.pt); a trial without one is an error saying why."""
    data = results.store.read_model(trial_id)
    if data is not None:
        return data
    where = results.location
    if results.study.get("save_models") is False:
        raise GenbenchError(
            f"{where}: the study kept no models (results: {{save_models: false}} in its study file); {RETRAIN}"
        )
    kept = results.store.model_ids()
    if not kept:
        raise GenbenchError(
            f"{where}: no models/ folder: these results were written before genbench kept models, or their models "
            f"were removed; {RETRAIN}"
        )
    row = results.trials[results.trials["trial_id"] == trial_id]
    status = str(row["status"].iloc[0]) if not row.empty else "unknown"
    raise GenbenchError(
        f"{where}: trial {trial_id!r} kept no model: its status is {status} (runs keep their model when they finish "
        f"training without diverging; {len(kept)} of these results' runs did, e.g. --trial {kept[0]})"
    )
