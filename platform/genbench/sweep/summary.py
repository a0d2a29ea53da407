"""A finished study in brief: best configuration, Pareto front, importances, budget curves, early-stopping savings."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import yaml

from genbench.metrics.score_warnings import score_warnings
from genbench.results.analysis import (
    budget_curve,
    config_entry,
    configurations,
    early_stopping_savings,
    importance_method,
    pareto_front,
    ranked,
    searched_keys,
)
from genbench.results.store import ResultsStore
from genbench.sweep.spec import Budget, Study

MIN_TRIALS_FOR_IMPORTANCE = 4  # fewer finished trials say nothing about which settings matter
IMPORTANCE_METHOD = "PED-ANOVA"  # Optuna's; scores conditional keys too (a `when:`- or family-guarded key)
TOP_SHARE, TOP_TRIALS = 0.1, 5  # the best 10% of the finished trials, or the best 5 where that is fewer (Optuna's
# advice: at least 5 above the quantile), at most half of them so that the best differ from all


def top_quantile(finished: int) -> float:
    """The share of finished trials PED-ANOVA calls the best: 0.1, raised to hold 5 trials, capped at 0.5."""
    return min(0.5, max(TOP_SHARE, TOP_TRIALS / finished))


def _objective_importances(loaded: Any, index: int, mode: str) -> dict[str, float]:
    """One objective's PED-ANOVA importances over the trials that measured it, shares summing to 1; {} when fewer
    than MIN_TRIALS_FOR_IMPORTANCE measured it or no setting's distribution among the best differs from all."""
    import warnings

    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    sign = -1.0 if mode == "max" else 1.0  # PED-ANOVA with a target takes lower as better
    measured = [
        t
        for t in loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if math.isfinite(t.values[index])
    ]
    if len(measured) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}
    evaluator = PedAnovaImportanceEvaluator(target_quantile=top_quantile(len(measured)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notes on small regimes and on targets being minimised
        raw = optuna.importance.get_param_importances(
            loaded, evaluator=evaluator, normalize=False, target=lambda t: sign * t.values[index]
        )
    total = sum(raw.values())
    # Optuna would spread an all-zero result evenly, which reads as a finding; none is reported instead.
    return {k: round(float(v) / total, 4) for k, v in raw.items()} if total > 0 else {}


def param_importances(storage: Any, study: Study) -> dict[str, dict[str, float]]:
    """Optuna's PED-ANOVA importance of every searched key (conditional ones included) per objective, from the
    study's journal; {} when not computable."""
    import optuna

    if storage is None:
        return {}
    loaded = optuna.load_study(study_name=study.name, storage=storage)
    out = {}
    for i, (metric, mode) in enumerate(study.objectives):
        scores = _objective_importances(loaded, i, mode)
        if scores:
            out[metric] = scores
    return out


def curve_group(study: Study) -> str | None:
    """The column budget curves are split by: the family, or the study's first searched choice (a GAN's loss)."""
    if len(study.families) > 1:
        return "family"
    return next((f"config.{k}" for k, p in study.space.items() if p.kind == "choice" and not p.when), None)


def summarise(study: Study, budget: Budget, store: ResultsStore, storage: Any) -> dict[str, Any]:
    """Write summary.yaml and budget_curve.parquet beside the results and return the summary."""
    trials = store.read("trials").to_pandas()
    table = configurations(trials)
    metrics = [m for m, _ in study.objectives]
    front = pareto_front(table, study.objectives) if all(m in table for m in metrics) else []
    metric, mode = study.objectives[0]
    best = ranked(table, trials, metric, mode)[:1]
    front = list(ranked(table[table["config_id"].isin(front)], trials, metric, mode)["config_id"])  # best first
    searched = searched_keys(study.space)

    def entry(config_id: str) -> dict[str, Any]:
        return config_entry(table[table["config_id"] == config_id].iloc[0], trials, metrics, searched)

    summary: dict[str, Any] = {
        "configurations": int(len(table)),
        "runs": int(len(trials)),
        "seeds": budget.seeds,
        "status": {str(k): int(v) for k, v in table["status"].value_counts().items()},
        "objectives": [{"metric": m, "mode": d} for m, d in study.objectives],
        "best": entry(best.iloc[0]["config_id"]) if len(best) else None,
        "pareto_front": [entry(c) for c in front] if len(metrics) > 1 else [],
        "importances": param_importances(storage, study),
        "importance_method": IMPORTANCE_METHOD,
        "early_stopping": early_stopping_savings(trials, _steps_per_run(budget, trials)),
        "warnings": score_warnings(trials),
    }  # scores to distrust: small reference sets, degenerate values
    curve = with_compute(budget_curve(table, metric, mode, curve_group(study)), budget)
    store.write_table("budget_curve.parquet", pa.Table.from_pandas(curve, preserve_index=False))
    store.write_bytes("", "summary.yaml", yaml.safe_dump(summary, sort_keys=False).encode())
    return summary


def with_compute(curve: Any, budget: Budget) -> Any:
    """The budget curve with the compute n trials cost under a compute budget: n x seeds x one run's budget, in
    `compute_unit` (device_s or flops); a steps budget adds nothing (steps do not compare across families)."""
    if budget.unit == "steps":
        return curve
    return curve.assign(compute=curve["trials"] * budget.seeds * budget.per_run, compute_unit=budget.unit)


def _steps_per_run(budget: Budget, trials: Any) -> int:
    """The steps a run's budget buys: budget.steps, or under a compute budget the median steps of the runs that
    spent all of it (each machine and configuration reaches its own)."""
    if budget.unit == "steps":
        return budget.steps
    done = trials.loc[trials["status"] == "completed", "steps"]
    return int(done.median()) if len(done) else 0


def _value(value: Any) -> str:
    """A setting as the study file writes it: 0.0006713, wasserstein, false (not Python's False)."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _scores(entry: dict[str, Any], metrics: list[str]) -> str:
    """'likelihood.bpd 4.52, quality.fd 23.3' (a metric not measured: 'not measured')."""
    return ", ".join(f"{m} {_value(entry[m]) if entry.get(m) is not None else 'not measured'}" for m in metrics)


def _keys(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in values.items())


def _named(entry: dict[str, Any], metrics: list[str], indent: str = "") -> list[str]:
    """A configuration in two lines: family, trial and scores; its searched keys and its other non-default keys."""
    seeds = f", {entry['seeds']} seeds" if entry.get("seeds", 1) > 1 else ""
    seeds += f", not completed: {entry['status']}" if entry.get("status", "completed") != "completed" else ""
    keys = [
        f"searched: {_keys(entry['searched'])}" if entry.get("searched") else "",
        f"not at the family's default: {_keys(entry['not_default'])}" if entry.get("not_default") else "",
    ]
    return [
        f"{indent}{entry['family']} (trial {entry['config_id']}{seeds}): {_scores(entry, metrics)}",
        f"{indent}  " + ("; ".join(k for k in keys if k) or "every key at the family's default"),
    ]


def winner_lines(summary: dict[str, Any]) -> list[str]:
    """The best configuration by the first objective, and each member of the Pareto front of several objectives:
    family, scores, searched keys and every other non-default key (every key: summary.yaml)."""
    metrics = [o["metric"] for o in summary.get("objectives") or []]
    best = summary.get("best")
    if not best:
        return []
    lines = _named(best, metrics)
    lines[0] = f"Best configuration: {lines[0]}"
    front = summary.get("pareto_front") or []
    if front:
        goals = ", ".join(f"{o['metric']} {o['mode']}" for o in summary["objectives"])
        members = f"{len(front)} configuration{'' if len(front) == 1 else 's'}"
        lines.append(f"Pareto front ({goals}): {members} that no other beats on every objective")
        lines += [line for p in front for line in _named(p, metrics, "  ")]
    return lines


def describe(summary: dict[str, Any], wall: str) -> list[str]:
    """The lines a finished sweep prints: outcomes, the winner and the Pareto front by name and settings, top
    importances, early-stopping savings."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary["status"].items()))
    runs = f" ({summary['runs']} runs: {summary['seeds']} seeds each)" if summary["seeds"] > 1 else ""
    best = summary.get("best") or {}
    metric = (summary.get("objectives") or [{}])[0].get("metric")
    best_text = f"; best {metric} = {best[metric]:.4g}" if isinstance(best.get(metric), float) else ""
    lines = [
        f"Done: {summary['configurations']} trials{runs} ({counts}) in {wall}{best_text}"
        + (f" (trial {best['config_id']})" if best_text else "")
    ]
    lines += winner_lines(summary)
    for metric, scores in summary["importances"].items():
        if not scores:
            continue
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(scores.items())[:4])
        lines.append(f"Importance for {metric} ({importance_method(summary)}): {top}")
    stop = summary["early_stopping"]
    if stop["runs_stopped"]:
        share = stop["steps_saved"] / max(stop["steps_budgeted"], 1)
        seconds = stop["device_s_saved_est"]
        estimate = f", ~{seconds:.1f} device-seconds" if math.isfinite(seconds) else ""
        lines.append(
            f"Early stopping: {stop['runs_stopped']} runs ended early and saved {stop['steps_saved']:,} of "
            f"{stop['steps_budgeted']:,} budgeted steps ({share:.0%}){estimate}"
        )
    lines += [f"Warning: {w}" for w in summary.get("warnings", [])]
    return lines
