"""A finished study in brief: best configuration, Pareto front, importances, budget curves, early-stopping savings."""
from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import yaml

from genbench.results.analysis import budget_curve, configurations, early_stopping_savings, pareto_front, ranked
from genbench.results.store import ResultsStore
from genbench.sweep.spec import Budget, Study

MIN_TRIALS_FOR_IMPORTANCE = 4  # fANOVA on fewer finished trials says nothing


def curve_group(study: Study) -> str | None:
    """The column budget curves are split by: the family, or the study's first searched choice (a GAN's loss)."""
    if len(study.families) > 1:
        return "family"
    return next((f"config.{k}" for k, p in study.space.items() if p.kind == "choice" and not p.when), None)


def param_importances(storage: Any, study: Study) -> dict[str, dict[str, float]]:
    """Optuna's hyperparameter importances (fANOVA) per objective, from the study's journal; {} when not computable."""
    import warnings

    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    if storage is None:
        return {}
    loaded = optuna.load_study(study_name=study.name, storage=storage)
    finished = [t for t in loaded.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}
    out = {}
    for i, (metric, _) in enumerate(study.objectives):
        target = (lambda t, i=i: t.values[i]) if len(study.objectives) > 1 else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(loaded, evaluator=FanovaImportanceEvaluator(seed=0),
                                                                 target=target)
        except (ValueError, RuntimeError):  # no parameter common to every trial, or non-finite values only
            continue
        out[metric] = {k: round(float(v), 4) for k, v in scores.items()}
    return out


def _finite(value: Any) -> float | None:
    """An objective value for YAML: a plain float, or null where it was not measured (NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def summarise(study: Study, budget: Budget, store: ResultsStore, storage: Any) -> dict[str, Any]:
    """Write summary.yaml and budget_curve.parquet beside the results and return the summary."""
    trials = store.read("trials").to_pandas()
    table = configurations(trials)
    metrics = [m for m, _ in study.objectives]
    front = pareto_front(table, study.objectives) if all(m in table for m in metrics) else []
    metric, mode = study.objectives[0]
    best = ranked(table, trials, metric, mode)[:1]
    summary: dict[str, Any] = {
        "configurations": int(len(table)), "runs": int(len(trials)), "seeds": budget.seeds,
        "status": {str(k): int(v) for k, v in table["status"].value_counts().items()},
        "best": {"config_id": str(best.iloc[0]["config_id"]), **{m: _finite(best.iloc[0][m]) for m in metrics}}
        if len(best) else None,
        "pareto_front": [{"config_id": c, **{m: _finite(table.loc[table["config_id"] == c, m].iloc[0])
                                             for m in metrics}} for c in front] if len(metrics) > 1 else [],
        "importances": param_importances(storage, study),
        "early_stopping": early_stopping_savings(trials, budget.steps)}
    curve = budget_curve(table, metric, mode, curve_group(study))
    store.write_table("budget_curve.parquet", pa.Table.from_pandas(curve, preserve_index=False))
    store.write_bytes("", "summary.yaml", yaml.safe_dump(summary, sort_keys=False).encode())
    return summary


def describe(summary: dict[str, Any], wall: str) -> list[str]:
    """The lines a finished sweep prints: outcomes, best, Pareto front, top importances, early-stopping savings."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary["status"].items()))
    runs = f" ({summary['runs']} runs: {summary['seeds']} seeds each)" if summary["seeds"] > 1 else ""
    best = summary.get("best") or {}
    best_text = "".join(f"; best {k} = {v:.4g}" for k, v in list(best.items())[1:2] if isinstance(v, float))
    lines = [f"Done: {summary['configurations']} trials{runs} ({counts}) in {wall}{best_text}"
             + (f" (trial {best['config_id']})" if best_text else "")]
    if summary["pareto_front"]:
        ids = ", ".join(p["config_id"] for p in summary["pareto_front"])
        lines.append(f"Pareto front: {len(summary['pareto_front'])} trial(s): {ids}")
    for metric, scores in summary["importances"].items():
        if not scores:
            continue
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(scores.items())[:4])
        lines.append(f"Importance for {metric} (fANOVA): {top}")
    stop = summary["early_stopping"]
    if stop["runs_stopped"]:
        share = stop["steps_saved"] / max(stop["steps_budgeted"], 1)
        seconds = stop["device_s_saved_est"]
        estimate = f", ~{seconds:.1f} device-seconds" if math.isfinite(seconds) else ""
        lines.append(f"Early stopping: {stop['runs_stopped']} runs ended early and saved {stop['steps_saved']:,} of "
                     f"{stop['steps_budgeted']:,} budgeted steps ({share:.0%}){estimate}")
    return lines
