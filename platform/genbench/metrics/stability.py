"""Stability of one run from its evaluation curve: pure functions of the values, in the order they were measured."""

from __future__ import annotations

import math
import statistics

TAIL_FRACTION = 1 / 3  # oscillation is measured over the last third of the evaluations


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def oscillation(values: list[float]) -> float:
    """Spread of the metric over the last third of training relative to its level: std / |mean| (NaN if undefined)."""
    tail = _finite(values[len(values) - max(2, math.ceil(len(values) * TAIL_FRACTION)) :])
    if len(tail) < 2:
        return math.nan
    mean = statistics.fmean(tail)
    return statistics.stdev(tail) / abs(mean) if mean else math.nan


def best_to_final_gap(values: list[float], better: str) -> float:
    """How far the final value fell short of the best value seen (>= 0; 0 when training ended at its best)."""
    finite = _finite(values)
    if not finite or not math.isfinite(values[-1]):
        return math.nan
    best = max(finite) if better == "max" else min(finite)
    return abs(best - values[-1])


def seed_spread(values: list[float]) -> dict[str, float]:
    """Spread of one configuration's final metric across its seeds: sample std and std / |mean| (NaN if undefined).

    Non-finite values (a seed whose metric could not be measured) are left out; success_rate says how many.
    """
    finite = _finite(values)
    if len(finite) < 2:
        return {"stability.seed_std": math.nan, "stability.seed_cv": math.nan}
    mean, std = statistics.fmean(finite), statistics.stdev(finite)
    return {"stability.seed_std": std, "stability.seed_cv": std / abs(mean) if mean else math.nan}


def success_rate(statuses: list[str], reached: list[bool] | None = None) -> float:
    """Fraction of a configuration's seeds that trained to the end (not diverged, collapsed, stopped or failed)
    and, where the study sets a quality threshold, reached it (`reached`, one flag per seed)."""
    reached = reached if reached is not None else [True] * len(statuses)
    return sum(s == "completed" and ok for s, ok in zip(statuses, reached)) / len(statuses) if statuses else math.nan
