"""What a study's rows say in aggregate: seed aggregates, configurations, the Pareto front, budget curves, savings."""

from __future__ import annotations

import functools
import math
from math import comb
from typing import Any

import numpy as np
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


def seed_aggregate(
    rows: list[dict[str, Any]], spread_metric: str, threshold: Threshold | None = None
) -> dict[str, Any]:
    """One configuration's value for the searcher from its per-seed rows.

    quality.*, likelihood.* and cost.* are averaged over the seeds that measured them; seed_std and seed_cv
    are the spread of `spread_metric`; success_rate counts the seeds that trained to the end and reached
    the study's success threshold.
    """
    numeric = {k for r in rows for k, v in r.items() if k.startswith(AVERAGED) and isinstance(v, (int, float))}
    out: dict[str, Any] = {k: _mean([r.get(k) for r in rows]) for k in sorted(numeric)}
    out.update(seed_spread([r.get(spread_metric, math.nan) for r in rows]))
    out["stability.success_rate"] = success_rate(
        [r.get("status", "failed") for r in rows], [reached(r, threshold) for r in rows]
    )
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
    points = rows[metrics].to_numpy(dtype=float) * np.asarray(signs)  # (configurations, objectives), higher better
    front = []
    for i, p in enumerate(points):  # each point against all at once: 10,000 configurations in about a second
        if not np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1)):
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
    if k > EXACT_UP_TO:
        return _expected_best_logs(np.asarray(ranked))
    return [sum(ranked[i - 1] * comb(i - 1, n - 1) for i in range(n, k + 1)) / comb(k, n) for n in range(1, k + 1)]


EXACT_UP_TO = 300  # up to this many scores the weights are exact integer binomials (their cost grows as k^2 bignums)


def _expected_best_logs(ranked: np.ndarray) -> list[float]:
    """expected_best over k ascending scores with the weights C(i-1, n-1) / C(k, n) from log-gamma, one vector
    operation per n: 10,000 scores in about a second, where exact binomials take hours."""
    k = len(ranked)
    log_fact = np.array([math.lgamma(j + 1) for j in range(k + 1)])  # log(j!)
    ranks = np.arange(1, k + 1)
    out = []
    for n in range(1, k + 1):
        i = ranks[n - 1 :]  # ranks that can be the best of n
        log_w = log_fact[i - 1] - log_fact[n - 1] - log_fact[i - n] - (log_fact[k] - log_fact[n] - log_fact[k - n])
        out.append(float(ranked[n - 1 :] @ np.exp(log_w)))
    return out


def budget_curve(table: pd.DataFrame, metric: str, mode: str, group: str | None) -> pd.DataFrame:
    """Expected best `metric` against the number of trials, for every configuration and per value of `group`."""
    parts = [("all", table)] + (list(table.groupby(group, sort=True)) if group and group in table else [])
    rows = []
    for value, part in parts:
        curve = expected_best([float(v) for v in part[metric].dropna()], mode) if metric in part else []
        rows += [
            {
                "group": group if value != "all" else "all",
                "value": str(value),
                "trials": n + 1,
                "metric": metric,
                "expected_best": best,
            }
            for n, best in enumerate(curve)
        ]
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
    return {
        "runs_stopped": int(len(stopped)),
        "steps_saved": int(saved_steps.sum()),
        "steps_budgeted": int(budget_steps * len(trials)),
        "device_s_spent": spent,
        "device_s_saved_est": float(saved_steps.sum() * rate) if len(stopped) else 0.0,
    }


STUDY_KEYS = ("seed", "train.steps", "eval.every", "train.threads")  # set by the study's budget for every trial


def importance_method(summary: dict[str, Any]) -> str:
    """The evaluator behind a summary.yaml's importances; one written before the key was recorded used fANOVA."""
    return str(summary.get("importance_method") or "fANOVA")


def _plain(value: Any, default: Any) -> Any:
    """A Parquet cell as the plain Python value of its run key: numpy scalars unwrapped, and a whole float back to
    an int where the key is an integer (a column shared by families with NaN rows is stored as float)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _missing(value: Any) -> bool:
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


@functools.cache
def family_defaults(family: str) -> dict[str, Any]:
    """Every run key of a family at its default ({} for a family this version does not know: older results)."""
    from genbench.config import from_flat, to_flat
    from genbench.errors import GenbenchError

    try:
        return to_flat(from_flat({"family": family}))
    except GenbenchError:
        return {}


def config_of(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """A configuration's run settings from its `trials` (or configurations) row: `family`, `seed` where the row has
    one, and every config.* key it holds. Keys of other families (NaN in this row) are left out; values are plain
    Python, typed as their key."""
    row = dict(row)
    family = str(row.get("family", ""))
    defaults = family_defaults(family)
    config: dict[str, Any] = {"family": family}
    if not _missing(row.get("seed")):
        config["seed"] = int(row["seed"])
    for column, value in row.items():
        key = column[len("config.") :] if column.startswith("config.") else ""
        if key and not _missing(value):
            config[key] = _plain(value, defaults.get(key))
    return config


Searched = dict[str, dict[str, list[Any]]]  # a study's searched keys -> the condition ('when') each is searched under


def searched_keys(space: dict[str, Any]) -> Searched:
    """The searched keys of a study.yaml `space:` mapping (or of a Study's Params) with their `when` conditions."""

    def when(param: Any) -> dict[str, list[Any]]:
        found = param.get("when") if isinstance(param, dict) else getattr(param, "when", None)
        return found if isinstance(found, dict) else {}

    return {key: when(param) for key, param in space.items()}


def settings(config: dict[str, Any], searched: Searched) -> tuple[dict[str, Any], dict[str, Any]]:
    """What makes a configuration what it is, besides its family: the values of the keys the search chose for it
    (a conditional key only where its condition held), and every other key whose value differs from its family's
    default. The study's data (data.*) and what its budget sets for every trial (steps, evaluation cadence,
    threads, seed) are the study's, not the configuration's: left out."""
    defaults = family_defaults(config["family"])
    chosen = {
        k: config[k]
        for k, when in searched.items()
        if k in config and k != "family" and all(config.get(c) in values for c, values in when.items())
    }
    other = {
        k: v
        for k, v in config.items()
        if k not in searched
        and k in defaults
        and k not in STUDY_KEYS
        and not k.startswith("data.")
        and v != defaults[k]
    }
    return chosen, other


def finite_or_none(value: Any) -> float | None:
    """An objective value for YAML: a plain float, or None where it was not measured (NaN, absent)."""
    value = value.item() if hasattr(value, "item") else value
    if _missing(value) or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) else None


def config_entry(row: pd.Series, trials: pd.DataFrame, metrics: list[str], searched: Searched) -> dict[str, Any]:
    """One configuration (a row of `configurations`) as summary.yaml and the index page name it: its id, family,
    objective values (mean over the seeds that measured them; None where none did), number of seeds, its status
    (completed only when every seed completed: `config_status`), its searched keys, its other
    keys not at their default (`settings`) and its every run key (`config`, with its first seed)."""
    config = config_of(row)
    ids = trials["config_id"] if "config_id" in trials else trials["trial_id"]
    runs = trials[(ids == row["config_id"]).values]
    seeds = sorted(int(s) for s in runs["seed"].dropna()) if "seed" in runs else []
    config.update({"seed": seeds[0]} if seeds else {})
    return {
        "config_id": str(row["config_id"]),
        "family": config["family"],
        **{m: finite_or_none(row.get(m)) for m in metrics},
        "seeds": int(len(runs)),
        "status": config_status([str(s) for s in runs["status"]]) if "status" in runs else "completed",
        **dict(zip(("searched", "not_default"), settings(config, searched))),
        "config": config,
    }
