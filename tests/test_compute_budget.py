"""Compute budgets (train.device_s, train.flops; budget.device_s / train_flops): when runs stop and evaluate, the
horizon their schedules read, and the study keys and scheduler that use them."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from genbench.errors import ConfigError
from genbench.shipped import STUDIES
from genbench.sweep.spec import STEP_CAP, load_study
from genbench.train import plan as plan_module
from genbench.train.plan import reached_end
from genbench.train.run import run

History = list[tuple[int, dict[str, float]]]


@pytest.fixture
def one_second_per_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU's device clock advances 1 s at every reading: each window (a lap, then a restart) spends 1 s."""
    ticks = itertools.count()
    monkeypatch.setattr(plan_module.time, "process_time", lambda: float(next(ticks)))


def _run(flat: dict[str, Any]) -> tuple[dict[str, Any], History]:
    history: History = []
    row = run(flat, lambda step, values: history.append((step, dict(values))))
    return row, history


def test_device_seconds_budget_stops_at_the_first_window_past_it(tiny_flat: dict, one_second_per_read: None) -> None:
    flat = {**tiny_flat, "train.steps": STEP_CAP, "train.device_s": 6.0, "eval.count": 3}
    row, history = _run(flat)
    assert row["status"] == "completed" and row["steps"] == 30  # 6 windows of log_every 5 steps, 1 s each
    spent = [values["train.device_s"] for _, values in history]
    assert spent == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [step for step, values in history if "eval.modes" in values] == [10, 20, 30]  # at 2, 4 and 6 s
    assert reached_end(flat, *history[-1]) and not reached_end(flat, *history[-2])


def test_device_seconds_horizon_drives_the_learning_rate_schedule(one_second_per_read: None) -> None:
    """The VAE's cosine decay runs over the steps the budget is expected to buy: the last lr is near 0."""
    from genbench.config import from_flat
    from genbench.data import load_dataset
    from genbench.families import FAMILIES
    from genbench.train.loop import train

    flat = {"family": "vae", "data.name": "grid25", "data.n_train": 500, "data.n_test": 200, "seed": 0}
    flat |= {"train.steps": STEP_CAP, "train.device_s": 8.0, "train.log_every": 4, "optim.lr_decay": "cosine"}
    flat |= {"optim.warmup_steps": 0, "vae.width": 16, "eval.n_samples": 100, "train.batch_size": 32}
    cfg = from_flat(flat)
    data = load_dataset(cfg.data)
    family = FAMILIES.get("vae").build(cfg, data)
    outcome = train(family, data, cfg, lambda s, v: None, lambda f: {})
    assert outcome.steps == 32 and family.horizon.steps == 32  # 8 windows of 4 steps, 1 s each
    assert family.sched.get_last_lr()[0] < 0.01 * cfg.optim.lr


def test_flop_budget_buys_the_steps_its_first_step_counts(tiny_flat: dict) -> None:
    counted, _ = _run(tiny_flat)
    step_flops = counted["cost.train_flops"] / counted["steps"]
    flat = {**tiny_flat, "train.steps": STEP_CAP, "train.flops": 13.5 * step_flops, "eval.count": 2}
    row, history = _run(flat)
    assert row["steps"] == 14 and row["cost.train_flops"] >= flat["train.flops"]  # ceil(13.5)
    assert [step for step, values in history if "eval.modes" in values] == [7, 14]
    assert reached_end(flat, *history[-1]) and not reached_end(flat, *history[0])


def test_a_run_takes_one_compute_budget() -> None:
    from genbench.config import from_flat

    with pytest.raises(ConfigError, match="both set"):
        from_flat({"family": "gan", "train.device_s": 5, "train.flops": 1e9})
    with pytest.raises(ConfigError, match=">= 0"):
        from_flat({"family": "gan", "train.device_s": -1})


STUDY = """study: compute
family: gan
data: {name: grid25}
objectives: [{metric: quality.modes, mode: max}]
budget: {BUDGET}
dry_run: {trials: 1, steps: 10}
search: {algorithm: random, scheduler: asha}
space:
  optim.lr_g: {float: [1.0e-4, 1.0e-3], log: true}
"""


def _study(tmp_path: Path, budget: str) -> Any:
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.replace("{BUDGET}", budget))
    return load_study(path)


def test_study_budget_in_device_seconds_sets_run_keys_and_asha_unit(tmp_path: Path) -> None:
    from genbench.sweep.tuner import _scheduler

    study = _study(tmp_path, "{trials: 4, device_s: 30, evals: 5, seeds: 2}")
    budget = study.budget
    assert (budget.unit, budget.per_run, budget.steps, budget.eval_interval) == ("device_s", 30.0, STEP_CAP, 6.0)
    keys = study.run_settings(budget)
    assert keys["train.device_s"] == 30.0 and keys["eval.count"] == 5 and "train.flops" not in keys
    asha = _scheduler(study, budget)
    assert asha._time_attr == "train.device_s" and asha._max_t == 30.0
    assert [rung[0] for rung in asha._brackets[0]._rungs] == [12.0]  # grace: 2 evaluations of 6 device-s
    flops = _study(tmp_path, "{trials: 4, train_flops: 2.0e12}").budget
    assert (flops.unit, flops.time_attr, flops.describe()) == ("flops", "train.flops", "2e+12 FLOPs")


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("{trials: 4, device_s: 30, train_flops: 1.0e12}", "both device_s and train_flops"),
        ("{trials: 4}", "missing its run budget"),
        ("{trials: 4, device_s: 30, eval_every: 100}", "eval_every counts steps"),
        ("{trials: 4, device_s: -3}", "expected a number > 0"),
        ("{trials: 4, train_flops: lots}", "expected a number > 0"),
    ],
)
def test_bad_compute_budgets_name_the_key_and_the_fix(tmp_path: Path, budget: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _study(tmp_path, budget)
    assert "s.yaml" in str(caught.value) and "budget." in str(caught.value)


def test_a_steps_budget_is_unchanged(tmp_path: Path) -> None:
    budget = _study(tmp_path, "{trials: 4, steps: 600}").budget
    assert budget.unit == "steps" and budget.run_keys() == {"train.steps": 600, "eval.every": 60}
    assert math.isclose(budget.eval_interval, 60)


FAIR = STUDIES / "families_fair.yaml"


def test_balanced_families_give_every_family_the_same_configurations() -> None:
    """search.families: balanced draws family k mod F for trial k; each family's own keys reach its trials only."""
    import optuna

    study = load_study(FAIR)
    space = study.define_by_run(study.run_settings(study.budget))
    optuna_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    runs = [space(optuna_study.ask()) for _ in range(study.budget.trials)]
    counts = {f: sum(r["family"] == f for r in runs) for f in study.families}
    assert counts == dict.fromkeys(study.families, study.budget.trials // len(study.families))
    for flat in runs:
        own = {k.split(".")[0] for k in flat if k.split(".")[0] in study.families}
        assert own <= {flat["family"]}
        assert ("optim.lr" in flat) == (flat["family"] != "gan") and flat["train.device_s"] == 20.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "search: {algorithm: random, seed: 0, families: balanced}",
                "search: {algorithm: grid, families: balanced}",
            ),
            "a grid already",
        ),
        (("budget: {trials: 30,", "budget: {trials: 31,"), "31 trials do not split evenly over 5 families"),
        (("families: balanced}", "families: evenly}"), "unknown value 'evenly'"),
    ],
)
def test_bad_balanced_studies_say_the_fix(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = tmp_path / "fair.yaml"
    path.write_text(FAIR.read_text().replace(*edit))
    with pytest.raises(ConfigError, match=message):
        load_study(path)


def test_family_table_counts_successes_and_failures_over_configurations_and_seeds() -> None:
    """Stability is the share of runs (configurations x seeds) that completed at the threshold; a mode-collapse stop
    and a divergence count as failures to train, a run a scheduler stopped does not."""
    import pandas as pd

    from genbench.dashboards.table import family_table

    trials = pd.DataFrame(
        {
            "trial_id": list("abcdef"),
            "config_id": ["c1", "c1", "c2", "c2", "c3", "c3"],
            "family": "gan",
            "status": ["completed", "completed", "completed", "diverged", "early_stopped", "early_stopped"],
            "error": ["", "", "", "non-finite loss", "mode collapse: one mode covered in 3 evaluations", ""],
            "quality.modes": [25.0, 19.0, 21.0, math.nan, 1.0, 12.0],
        }
    )
    study = {
        "objectives": [{"metric": "quality.modes", "mode": "max"}],
        "success": {"metric": "quality.modes", "side": "at_least", "value": 20},
        "algorithm": "random",
        "family": "gan",
        "budget": {"trials": 3, "device_s": 20.0, "evals": 5, "seeds": 2},
    }
    rows, caption = family_table(trials, study)
    cells = dict(rows)["gan"]
    assert cells["training stability"].value == pytest.approx(100 * 2 / 6) and cells["training stability"].n == 6
    assert cells["training stability"].unit == "% reached modes >= 20"
    assert cells["diverged or collapsed"].value == pytest.approx(100 * 2 / 6)
    lo, hi = cells["training stability"].interval or (0, 0)
    assert 0 < lo < 100 * 2 / 6 < hi < 100
    assert "Protocol: random search; 3 trials x 20 device-seconds, evaluated 5 times, 2 seeds each" in caption


def test_data_parallel_workers_spend_one_budget_together(tiny_flat: dict, one_second_per_read: None) -> None:
    """Two workers each spending 1 s a window spend 2 device-seconds of the run's budget per window; the reduce
    (their mean, as all-reduce gives every worker) is what each worker adds, so all stop at the same step."""
    from genbench.config import from_flat
    from genbench.data import load_dataset
    from genbench.families import FAMILIES
    from genbench.train.loop import train

    cfg = from_flat({**tiny_flat, "train.steps": STEP_CAP, "train.device_s": 6.0, "eval.count": 1})
    data = load_dataset(cfg.data)
    family = FAMILIES.get("gan").build(cfg, data)
    reduced: list[float] = []

    def mean_of_two_workers(values: Any) -> Any:  # this worker's lap and an identical one: their mean
        if values.numel() == 1:  # the lap (the window's scalars are a (K, W) tensor)
            reduced.append(float(values[0]))
        return values

    outcome = train(family, data, cfg, lambda s, v: None, lambda f: {}, reduce=mean_of_two_workers, world=2)
    assert outcome.steps == 15 and reduced == [1.0, 1.0, 1.0]  # 3 windows of 5 steps at 2 device-s each


def test_budget_curve_under_a_compute_budget_says_what_n_trials_cost(tmp_path: Path) -> None:
    """n trials of a device-second budget cost n x seeds x device_s: the curve's `compute` column and its axis."""
    import pandas as pd

    from genbench.dashboards import figures
    from genbench.results.analysis import budget_curve
    from genbench.sweep.summary import with_compute

    table = pd.DataFrame({"family": ["gan", "vae", "gan", "vae"], "quality.modes": [3.0, 20.0, 9.0, 24.0]})
    budget = _study(tmp_path, "{trials: 4, device_s: 20, seeds: 2}").budget
    curve = with_compute(budget_curve(table, "quality.modes", "max", "family"), budget)
    assert curve[curve["value"] == "all"]["compute"].tolist() == [40.0, 80.0, 120.0, 160.0]
    assert set(curve["compute_unit"]) == {"device_s"}
    fig = figures.budget_curve(curve)
    assert "each trial 40 device-seconds" in fig.layout.xaxis.title.text
    steps = _study(tmp_path, "{trials: 4, steps: 100}").budget
    assert "compute" not in with_compute(budget_curve(table, "quality.modes", "max", None), steps)
