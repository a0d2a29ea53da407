"""What a study's rows say in aggregate: seed aggregates, configurations, the Pareto front, budget curves, savings."""
from __future__ import annotations

import math
from math import comb
from typing import Any

import pandas as pd

from genbench.metrics.stability import seed_spread, success_rate

AVERAGED = ("quality.", "likelihood.", "cost.")  # prefixes whose values are averaged over a configuration's seeds


def _mean(values: list[Any]) -> float:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


Threshold = tuple[str, str, float]  # (metric, 'at_least' | 'at_most', value): what a successful seed reaches


def reached(row: dict[str, Any], threshold: Threshold | None) -> bool:
    """Whether a seed's final metric meets the study's success threshold (always, without one)."""
    if threshold is None:
        return True
    metric, side, bound = threshold
    value = row.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value >= bound if side == "at_least" else value <= bound


def seed_aggregate(rows: list[dict[str, Any]], spread_metric: str,
                   threshold: Threshold | None = None) -> dict[str, Any]:
    """One configuration's value for the searcher from its per-seed rows.

    quality.*, likelihood.* and cost.* are averaged over the seeds that measured them; seed_std and seed_cv
    are the spread of `spread_metric`; success_rate counts the seeds that trained to the end and reached
    the study's success threshold.
    """
    numeric = {k for r in rows for k, v in r.items() if k.startswith(AVERAGED) and isinstance(v, (int, float))}
    out: dict[str, Any] = {k: _mean([r.get(k) for r in rows]) for k in sorted(numeric)}
    out.update(seed_spread([r.get(spread_metric, math.nan) for r in rows]))
    out["stability.success_rate"] = success_rate([r.get("status", "failed") for r in rows],
                                                 [reached(r, threshold) for r in rows])
    return out


def config_status(statuses: list[str]) -> str:
    """A configuration is completed when every seed completed; otherwise it takes its first other outcome."""
    return next((s for s in statuses if s != "completed"), "completed")


def configurations(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (config_id): per-seed metrics averaged, config.* and seed aggregates kept."""
    if "config_id" not in trials:
        trials = trials.assign(config_id=trials["trial_id"])
    metric_cols = [c for c in trials if c.startswith(AVERAGED + ("stability.",)) and trials[c].dtype != object]
    first_cols = [c for c in trials if c.startswith("config.") or c in ("family", "study")]
    grouped = trials.groupby("config_id", sort=False)
    table = grouped[metric_cols].mean(numeric_only=True).join(grouped[first_cols].first())
    table["status"] = grouped["status"].agg(lambda s: config_status(list(s)))
    table["seeds"] = grouped.size()
    table["steps"] = grouped["steps"].sum() if "steps" in trials else 0
    return table.reset_index()


def ranked(table: pd.DataFrame, trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Configurations with a measured `metric`, best first; a tie goes to the one that finished first, as in the
    sweep's progress line (its 'best so far' changes only on a strictly better value)."""
    rows = table.dropna(subset=[metric]) if metric in table else table[:0]
    if "end_time" in trials:
        ids = trials["config_id"] if "config_id" in trials else trials["trial_id"]
        rows = rows.assign(_end=rows["config_id"].map(trials.groupby(ids.values)["end_time"].max()))
        rows = rows.sort_values("_end", kind="stable").drop(columns="_end")
    return rows.sort_values(metric, ascending=mode == "min", kind="stable")


def pareto_front(table: pd.DataFrame, objectives: list[tuple[str, str]]) -> list[str]:
    """config_ids not dominated by any other configuration on every objective (rows with a NaN objective excluded)."""
    metrics = [m for m, _ in objectives]
    rows = table.dropna(subset=metrics)
    signs = [1.0 if mode == "max" else -1.0 for _, mode in objectives]
    points = [[s * float(v) for s, v in zip(signs, vals)] for vals in rows[metrics].itertuples(index=False)]
    front = []
    for i, p in enumerate(points):
        dominated = any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p)) for q in points)
        if not dominated:
            front.append(str(rows["config_id"].iloc[i]))
    return front


def expected_best(scores: list[float], mode: str) -> list[float]:
    """E[best of n trials] for n = 1..k, drawing n of the k measured scores without replacement.

    The score of rank i (ascending by quality) is the best of a random n-subset with probability
    C(i-1, n-1) / C(k, n): the budget curve of Lucic et al. (2018), "Are GANs created equal?".
    """
    ranked = sorted(s for s in scores if math.isfinite(s))
    if mode == "min":
        ranked = ranked[::-1]
    k = len(ranked)
    return [sum(ranked[i - 1] * comb(i - 1, n - 1) for i in range(n, k + 1)) / comb(k, n) for n in range(1, k + 1)]


def budget_curve(table: pd.DataFrame, metric: str, mode: str, group: str | None) -> pd.DataFrame:
    """Expected best `metric` against the number of trials, for every configuration and per value of `group`."""
    parts = [("all", table)] + (list(table.groupby(group, sort=True)) if group and group in table else [])
    rows = []
    for value, part in parts:
        curve = expected_best([float(v) for v in part[metric].dropna()], mode) if metric in part else []
        rows += [{"group": group if value != "all" else "all", "value": str(value), "trials": n + 1,
                  "metric": metric, "expected_best": best} for n, best in enumerate(curve)]
    return pd.DataFrame(rows, columns=["group", "value", "trials", "metric", "expected_best"])


def early_stopping_savings(trials: pd.DataFrame, budget_steps: int) -> dict[str, float]:
    """Steps and device seconds that ended runs (stopped, diverged, collapsed) did not spend, against the budget.

    Device time saved is the steps saved at the device seconds per step of the runs that went to the end
    (a stopped run's own rate is dominated by start-up and evaluation); NaN when no run completed.
    """
    stopped = trials[trials["status"].isin(["early_stopped", "diverged"])]
    saved_steps = (budget_steps - stopped["steps"]).clip(lower=0)
    done = trials[trials["status"] == "completed"]
    rate = float(done["cost.device_s"].sum() / done["steps"].sum()) if len(done) and done["steps"].sum() else math.nan
    spent = float(trials["cost.device_s"].sum()) if "cost.device_s" in trials else math.nan
    return {"runs_stopped": int(len(stopped)), "steps_saved": int(saved_steps.sum()),
            "steps_budgeted": int(budget_steps * len(trials)), "device_s_spent": spent,
            "device_s_saved_est": float(saved_steps.sum() * rate) if len(stopped) else 0.0}
