"""Seed aggregates, configurations, Pareto fronts, budget curves and savings: known answers on small tables."""

from __future__ import annotations

import itertools
import math
import random
from math import comb
from typing import Any

import numpy as np
import pandas as pd
import pytest

from genbench.results.analysis import (
    budget_curve,
    config_status,
    configurations,
    early_stopping_savings,
    expected_best,
    pareto_front,
    seed_aggregate,
)
from genbench.sweep.trainable import run_stream


def test_seed_aggregate_means_spread_and_success() -> None:
    rows = [
        {"status": "completed", "quality.modes": 20.0, "cost.wall_s": 2.0},
        {"status": "completed", "quality.modes": 24.0, "cost.wall_s": 4.0},
        {"status": "diverged", "quality.modes": 1.0, "cost.wall_s": 1.0},
    ]
    agg = seed_aggregate(rows, "quality.modes")
    assert agg["quality.modes"] == pytest.approx(15.0) and agg["cost.wall_s"] == pytest.approx(7 / 3)
    assert agg["stability.seed_std"] == pytest.approx(pd.Series([20.0, 24.0, 1.0]).std())
    assert agg["stability.seed_cv"] == pytest.approx(agg["stability.seed_std"] / 15.0)
    assert agg["stability.success_rate"] == pytest.approx(2 / 3)


def test_seed_aggregate_skips_unmeasured_seeds_and_needs_two_for_a_spread() -> None:
    agg = seed_aggregate([{"status": "failed"}, {"status": "completed", "quality.modes": 5.0}], "quality.modes")
    assert agg["quality.modes"] == 5.0 and agg["stability.success_rate"] == 0.5
    assert math.isnan(agg["stability.seed_std"]) and math.isnan(agg["stability.seed_cv"])


def test_success_needs_the_threshold_as_well_as_a_completed_run() -> None:
    rows = [
        {"status": "completed", "quality.modes": 22.0},
        {"status": "completed", "quality.modes": 12.0},
        {"status": "diverged", "quality.modes": 24.0},
        {"status": "completed"},
    ]
    assert seed_aggregate(rows, "quality.modes")["stability.success_rate"] == 0.75
    assert seed_aggregate(rows, "quality.modes", ("quality.modes", "at_least", 20.0))["stability.success_rate"] == 0.25
    assert seed_aggregate(rows, "quality.modes", ("quality.modes", "at_most", 12.0))["stability.success_rate"] == 0.25


def test_config_status_is_completed_only_when_every_seed_completed() -> None:
    assert config_status(["completed", "completed"]) == "completed"
    assert config_status(["completed", "diverged", "failed"]) == "diverged"


def test_configurations_group_seeds() -> None:
    trials = pd.DataFrame(
        {
            "trial_id": ["a_s0", "a_s1", "b"],
            "config_id": ["a", "a", "b"],
            "status": ["completed", "diverged", "completed"],
            "steps": [100, 40, 100],
            "quality.modes": [10.0, 2.0, 7.0],
            "config.optim.lr": [1e-3, 1e-3, 1e-2],
        }
    )
    table = configurations(trials).set_index("config_id")
    assert table.loc["a", "quality.modes"] == 6.0 and table.loc["a", "seeds"] == 2
    assert table.loc["a", "status"] == "diverged" and table.loc["b", "config.optim.lr"] == 1e-2


def _dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """p is dominated by q for objectives (max, min)."""
    return q[0] >= p[0] and q[1] <= p[1] and q != p


def test_pareto_front_matches_brute_force() -> None:
    rng = random.Random(0)
    points = [(float(rng.randint(0, 10)), float(rng.randint(0, 10))) for _ in range(40)]
    table = pd.DataFrame(
        {"config_id": [str(i) for i in range(40)], "q": [p[0] for p in points], "c": [p[1] for p in points]}
    )
    front = set(pareto_front(table, [("q", "max"), ("c", "min")]))
    expected = {str(i) for i, p in enumerate(points) if not any(_dominated(p, q) for q in points)}
    assert front == expected and front


def test_pareto_front_skips_unmeasured() -> None:
    table = pd.DataFrame({"config_id": ["a", "b"], "q": [float("nan"), 1.0], "c": [0.0, 5.0]})
    assert pareto_front(table, [("q", "max"), ("c", "min")]) == ["b"]


def test_expected_best_matches_enumerating_every_subset() -> None:
    scores = [3.0, 9.0, 1.0, 7.0, 5.0]
    curve = expected_best(scores, "max")
    for n in range(1, 6):
        subsets = list(itertools.combinations(scores, n))
        assert curve[n - 1] == pytest.approx(sum(max(s) for s in subsets) / len(subsets))
    assert expected_best(scores, "min")[0] == pytest.approx(5.0) and expected_best(scores, "min")[-1] == 1.0


def test_budget_curve_per_group() -> None:
    table = pd.DataFrame(
        {
            "config_id": list("abcd"),
            "quality.modes": [1.0, 3.0, 2.0, 8.0],
            "config.gan.loss": ["hinge", "hinge", "wasserstein", "wasserstein"],
        }
    )
    curve = budget_curve(table, "quality.modes", "max", "config.gan.loss")
    hinge = curve[curve["value"] == "hinge"]["expected_best"].tolist()
    assert hinge == [2.0, 3.0] and curve[curve["value"] == "all"]["expected_best"].iloc[-1] == 8.0


def test_early_stopping_savings_counts_steps_not_spent() -> None:
    trials = pd.DataFrame(
        {
            "status": ["completed", "early_stopped", "diverged"],
            "steps": [100, 30, 10],
            "cost.device_s": [10.0, 5.0, 4.0],
        }
    )
    saved = early_stopping_savings(trials, 100)
    assert saved["runs_stopped"] == 2 and saved["steps_saved"] == 160 and saved["steps_budgeted"] == 300
    assert saved["device_s_saved_est"] == pytest.approx(16.0)  # 160 steps at the completed run's 0.1 s/step


def test_run_stream_reports_then_its_row(tiny_flat: dict[str, Any]) -> None:
    items = list(run_stream(tiny_flat))
    reports = [i for i in items if i[0] == "report"]
    assert {i[0] for i in items[:-1]} == {"report", "partial"} and items[-1][0] == "row"
    assert items[-1][1]["status"] == "completed" and reports[-1][1] == tiny_flat["train.steps"]
    for before, after in itertools.pairwise(items):  # a snapshot comes right before each evaluation's report
        if before[0] == "partial":
            assert after[0] == "report" and any(k.startswith("eval.") for k in after[2])
            assert before[1]["steps"] == after[1] and before[1]["cost.wall_s"] > 0
            assert {"provenance.n_generated", "stability.grad_norm_max", "cost.params", "cost.device"} <= set(before[1])
    evaluations = sum(any(k.startswith("eval.") for k in i[2]) for i in reports)
    assert sum(i[0] == "partial" for i in items) == evaluations == 2  # eval.every 10 of 20 steps


def test_closing_a_run_stream_stops_its_run(tiny_flat: dict[str, Any]) -> None:
    import threading

    stream = run_stream({**tiny_flat, "train.steps": 100000, "seed": 7})
    assert next(stream)[0] == "report"
    (worker,) = [t for t in threading.enumerate() if t.name == "seed-7"]
    stream.close()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_run_stream_passes_bad_settings_on_as_an_error(tiny_flat: dict[str, Any]) -> None:
    items = list(run_stream({**tiny_flat, "data.name": "nope"}))
    assert items[-1][0] == "input-error" and "nope" in items[-1][1]  # deterministic: the trial is not retried


def test_ranked_puts_the_best_first_and_breaks_ties_by_who_finished_first() -> None:
    from genbench.results.analysis import ranked

    trials = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d"],
            "config_id": ["a", "b", "c", "d"],
            "status": ["completed"] * 4,
            "quality.modes": [20.0, 14.0, 20.0, math.nan],
            "end_time": pd.to_datetime([30, 10, 20, 5], unit="s", utc=True),
        }
    )
    order = ranked(configurations(trials), trials, "quality.modes", "max")["config_id"].tolist()
    assert order == ["c", "a", "b"]  # c and a tie at 20: c finished first; d measured nothing
    assert ranked(configurations(trials), trials, "quality.modes", "min")["config_id"].tolist() == ["b", "c", "a"]


def test_expected_best_of_many_scores_from_log_weights_matches_exact_binomials() -> None:
    from genbench.results.analysis import EXACT_UP_TO, _expected_best_logs

    scores = sorted(np.random.default_rng(0).normal(size=EXACT_UP_TO + 50).tolist())
    k = len(scores)
    exact = [sum(scores[i - 1] * comb(i - 1, n - 1) for i in range(n, k + 1)) / comb(k, n) for n in (1, 2, 50, k)]
    fast = _expected_best_logs(np.asarray(scores))
    assert [fast[n - 1] for n in (1, 2, 50, k)] == pytest.approx(exact, rel=1e-9)
    assert expected_best(scores, "max")[-1] == pytest.approx(max(scores), rel=1e-12)
