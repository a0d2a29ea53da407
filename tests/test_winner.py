"""The winner named (summary.yaml, the sweep's last lines, the index page), the family table, progress and ETA: on
rows written the way a real multi-family sweep writes them (trial_row, two seeds, diverged and stopped runs)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from genbench.dashboards.site import budget_words, load_context, write_dashboards
from genbench.dashboards.table import family_table, to_html, to_text
from genbench.results.analysis import config_of, settings
from genbench.results.store import ResultsStore
from genbench.sweep.progress import Progress
from genbench.sweep.records import trial_row
from genbench.sweep.spec import load_study
from genbench.sweep.summary import describe, summarise
from genbench.sweep.tuner import seed_trial_id

STUDY = """
study: vae_flow
family: [vae, flow]
data: {name: grid25, n_train: 500, n_test: 200}
objectives: [{metric: likelihood.nll, mode: min}, {metric: quality.swd, mode: min}]
budget: {trials: 5, steps: 100, eval_every: 50, seeds: 2}
dry_run: {trials: 5, steps: 100, eval_every: 50, seeds: 2}
search: {algorithm: random, seed: 0}
fixed: {train.batch_size: 64}
space:
  optim.lr: {float: [1.0e-4, 1.0e-2], log: true}
"""
# config_id -> (family, optim.lr, per seed: (status, steps, likelihood.nll, quality.swd))
RUNS: dict[str, tuple[str, float, list[tuple[str, int, float, float]]]] = {
    "c1": ("vae", 1e-3, [("completed", 100, 2.0, 0.30), ("completed", 100, 2.2, 0.35)]),
    "c2": ("flow", 2e-3, [("completed", 100, 1.5, 0.50), ("completed", 100, 1.7, 0.60)]),
    "c3": ("flow", 9e-3, [("completed", 100, 1.65, 0.80), ("diverged", 37, math.nan, math.nan)]),
    "c4": ("vae", 1e-4, [("early_stopped", 50, math.nan, 0.90), ("early_stopped", 50, math.nan, 0.95)]),
    "c5": ("flow", 5e-4, [("completed", 100, 1.9, 0.20), ("completed", 100, 1.8, 0.25)]),
}


def _rows(study: Any, config_id: str) -> list[dict[str, Any]]:
    family, lr, seeds = RUNS[config_id]
    settings_ = {**study.run_settings(study.dry_run), "family": family, "optim.lr": lr}
    return [
        trial_row(
            study,
            seed_trial_id(config_id, seed, 2),
            {**settings_, "seed": seed},
            {
                "config_id": config_id,
                "status": status,
                "steps": steps,
                "likelihood.nll": nll,
                "quality.swd": swd,
                "start_time": 0.0,
                "end_time": 1.0,
            },
        )
        for seed, (status, steps, nll, swd) in enumerate(seeds)
    ]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, dict[str, Any]]:
    """A vae+flow study's results as the sweep writes them, and its summary."""
    root = tmp_path_factory.mktemp("winner")
    (root / "study.yaml").write_text(STUDY)
    study = load_study(str(root / "study.yaml"))
    store = ResultsStore(str(root / "results"))
    store.write_study(
        {
            "study": study.name,
            "family": study.families,
            "budget": vars(study.dry_run),
            "objectives": [{"metric": m, "mode": d} for m, d in study.objectives],
            "space": study.raw["space"],
        }
    )
    for config_id in RUNS:
        store.write_config(config_id, _rows(study, config_id), [])
    return study, store.uri, summarise(study, study.dry_run, store, None)


def test_summary_names_the_best_configuration_with_its_settings(sweep: tuple[Any, str, dict[str, Any]]) -> None:
    _, out, summary = sweep
    on_disk = yaml.safe_load((Path(out) / "summary.yaml").read_text())
    assert (on_disk["best"], on_disk["pareto_front"]) == (summary["best"], summary["pareto_front"])
    best = on_disk["best"]
    assert (best["config_id"], best["family"], best["seeds"]) == ("c2", "flow", 2)
    assert best["likelihood.nll"] == pytest.approx(1.6) and best["quality.swd"] == pytest.approx(0.55)
    assert best["searched"] == {"optim.lr": 2e-3}
    assert best["not_default"] == {"train.batch_size": 64}  # data.*, steps, eval.every, threads: the study's
    config = best["config"]
    assert config["family"] == "flow" and config["seed"] == 0 and config["optim.lr"] == 2e-3
    assert config["flow.couplings"] == 6 and type(config["flow.couplings"]) is int  # a float column in Parquet
    assert config["data.n_train"] == 500 and config["train.steps"] == 100
    assert not any(k.startswith("vae.") for k in config)  # the other family's columns are NaN in its rows


def test_summary_pareto_front_holds_full_configurations_best_first(sweep: tuple[Any, str, dict[str, Any]]) -> None:
    _, _, summary = sweep
    # c1 (2.1, 0.325) is beaten by c5 (1.85, 0.225), c3 (1.65 over its one measured seed, 0.8) by c2 (1.6, 0.55)
    assert [p["config_id"] for p in summary["pareto_front"]] == ["c2", "c5"]
    c5 = summary["pareto_front"][1]
    assert c5["family"] == "flow" and c5["searched"] == {"optim.lr": 5e-4} and c5["config"]["optim.lr"] == 5e-4
    assert c5["likelihood.nll"] == pytest.approx(1.85) and c5["quality.swd"] == pytest.approx(0.225)


def test_the_sweep_prints_the_winner_and_the_front_by_name(sweep: tuple[Any, str, dict[str, Any]]) -> None:
    _, _, summary = sweep
    lines = describe(summary, "0:01:00")
    assert lines[0] == (
        "Done: 5 trials (10 runs: 2 seeds each) (3 completed, 1 diverged, 1 early_stopped) in "
        "0:01:00; best likelihood.nll = 1.6 (trial c2)"
    )
    assert lines[1] == "Best configuration: flow (trial c2, 2 seeds): likelihood.nll 1.6, quality.swd 0.55"
    assert lines[2] == "  searched: optim.lr 0.002; not at the family's default: train.batch_size 64"
    assert lines[3] == (
        "Pareto front (likelihood.nll min, quality.swd min): 2 configurations that no other beats on every objective"
    )
    assert lines[4:8] == [
        "  flow (trial c2, 2 seeds): likelihood.nll 1.6, quality.swd 0.55",
        "    searched: optim.lr 0.002; not at the family's default: train.batch_size 64",
        "  flow (trial c5, 2 seeds): likelihood.nll 1.85, quality.swd 0.225",
        "    searched: optim.lr 0.0005; not at the family's default: train.batch_size 64",
    ]
    flagged = describe({**summary, "best": {**summary["best"], "status": "diverged"}}, "0:01:00")
    assert flagged[1].startswith("Best configuration: flow (trial c2, 2 seeds, not completed: diverged): ")


def test_settings_of_a_row_keep_searched_and_non_default_keys_only() -> None:
    row = pd.Series(
        {
            "family": "vae",
            "seed": 3,
            "config.vae.latent_dim": 16.0,
            "config.vae.beta": 1.0,
            "config.flow.hidden": math.nan,
            "config.optim.lr": 1e-3,
            "config.train.steps": 40,
            "config.data.n_train": 600,
            "config.vae.activation": "silu",
        }
    )
    config = config_of(row)
    assert config == {
        "family": "vae",
        "seed": 3,
        "vae.latent_dim": 16,
        "vae.beta": 1.0,
        "optim.lr": 1e-3,
        "train.steps": 40,
        "data.n_train": 600,
        "vae.activation": "silu",
    }
    searched, other = settings(config, {"family": {}, "optim.lr": {}, "vae.beta": {"family": ["flow"]}})
    assert searched == {"optim.lr": 1e-3}  # at the default, but searched: shown; vae.beta: not searched for a vae
    assert other == {"vae.latent_dim": 16, "vae.activation": "silu"}  # beta at its default; steps, data: the study's


def test_family_table_separates_the_best_configuration_from_the_runs(sweep: tuple[Any, str, dict[str, Any]]) -> None:
    _, out, _ = sweep
    ctx = load_context(out)
    rows, caption = family_table(ctx.trials, ctx.study)
    assert [f for f, _ in rows] == ["vae", "flow"]  # no row for the families the study did not run
    flow = dict(rows)["flow"]
    best = flow["quality"]  # c5: the best mean swd among configurations whose every seed completed
    assert best.value == pytest.approx(0.225) and best.n == 2 and "trial c5" in best.note
    assert best.interval == (0.20, 0.25) and best.main() == "0.225 swd [0.2, 0.25]"  # the range of its seeds
    runs = flow["quality over runs"]  # every completed flow run: c2 s0, s1, c3 s0, c5 s0, s1
    assert runs.value == pytest.approx(0.47) and runs.n == 5 and runs.detail() == "n=5 completed runs"
    assert runs.spread == pytest.approx(pd.Series([0.5, 0.6, 0.8, 0.2, 0.25]).std())
    assert flow["training stability"].n == 6 and flow["likelihood"].value == pytest.approx(1.85)
    vae = dict(rows)["vae"]
    assert vae["quality"].value == pytest.approx(0.325) and vae["quality over runs"].n == 2  # c4 was stopped
    text = to_text(rows)
    assert "quality, best configuration" in text and "quality, all completed runs" in text and "not run" not in text
    assert "best mean quality.swd" in caption and "[min, max] over its seeds" in caption


def test_one_seed_best_configuration_is_its_single_run() -> None:
    """The issue's case: with one seed the best configuration's value is its run, not the family's average."""
    trials = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c"],
            "config_id": ["a", "b", "c"],
            "family": "flow",
            "status": "completed",
            "quality.fd": [23.3, 40.0, 49.5],
        }
    )
    rows, _ = family_table(trials, {"objectives": [{"metric": "quality.fd", "mode": "min"}]})
    flow = dict(rows)["flow"]
    assert flow["quality"].value == 23.3 and flow["quality"].interval is None
    assert flow["quality"].main() == "23.3 fd" and flow["quality"].detail() == "n=1 run, trial a"
    assert flow["quality over runs"].value == pytest.approx(37.6) and flow["quality over runs"].n == 3


def test_the_table_shows_mode_collapse_and_likelihood_only_where_a_family_measured_them() -> None:
    """A VAE/flow study has no mode statistic: no such column (or caption words); a GAN study no likelihood."""
    trials = pd.DataFrame(
        {
            "trial_id": ["a", "b"],
            "config_id": ["a", "b"],
            "family": ["vae", "flow"],
            "status": "completed",
            "quality.fd": [3.0, 4.0],
            "likelihood.bpd": [4.5, 3.9],
        }
    )
    rows, caption = family_table(trials, {"objectives": [{"metric": "quality.fd", "mode": "min"}]})
    page = to_html(rows, caption)
    assert "mode" not in to_text(rows) and "mode" not in page and "likelihood" in page
    assert 'colspan="3">the family' in page and 'colspan="3">all the family' in page
    gan = trials.assign(family="gan", **{"quality.mode_kl": [0.1, 0.2]}).drop(columns="likelihood.bpd")
    rows, caption = family_table(gan, {"objectives": [{"metric": "quality.fd", "mode": "min"}]})
    assert "mode collapse" in to_text(rows) and "likelihood" not in to_text(rows) + caption


def test_index_page_names_the_winner_every_objective_and_the_budget(sweep: tuple[Any, str, dict[str, Any]]) -> None:
    _, out, _ = sweep
    index = Path(write_dashboards(out)).read_text()
    assert "likelihood.nll (lower is better), quality.swd (lower is better)" in index
    assert "5 trials x 100 steps, evaluated every 50 steps, 2 seeds each" in index and "{&#x27;trials" not in index
    best = index.split('id="best"')[1].split("</table>")[0]
    assert "<td>flow</td><td>c2<br><small>2 seeds</small></td>" in best
    assert "likelihood.nll 1.6<br>quality.swd 0.55" in best and "<code>optim.lr</code> 0.002" in best
    assert "<code>train.batch_size</code> 64" in best
    front = index.split('id="pareto-front"')[1].split("</table>")[0]
    assert front.count("<tr>") == 3 and "c5" in front  # a header and its two members
    assert budget_words({"trials": 8, "steps": 600}) == "8 trials x 600 steps, 1 seed each"
    assert budget_words(
        {"trials": 5, "steps": 1000, "eval_every": 500, "seeds": 2}, {"train.steps": 100, "eval.every": 50}
    ) == ("5 trials x 100 steps, evaluated every 50 steps, 2 seeds each")  # --set over the budget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _left(line: str) -> float:
    h, m, s = line.rsplit("~", 1)[1].split(" ")[0].split(":")
    return 3600 * int(h) + 60 * int(m) + int(s)


def test_progress_estimates_at_the_first_window_and_its_eta_does_not_grow_while_trials_run() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("dry-run x", 4, ("quality.fd", "min"), out=out, every_s=0, steps=100, live=2, clock=clock)
    progress.trial_started("a")
    progress.trial_started("b")
    clock.now = 10.0
    progress.advanced("a", 50)  # its first evaluation window: 20 s a trial
    estimate = out.getvalue().splitlines()[-1]
    assert estimate == (
        "[dry-run x] estimate: ~0:00:35 left for 4 trials, 2 at once (trial a reached step 50 of "
        "100 in 10 s, its first evaluation window: ~0:00:20 a trial)"
    )  # 3.5 trials x 20 s / 2
    lefts = []
    for now in (12.0, 20.0, 30.0):  # no report meanwhile: the time left counts down
        clock.now = now
        progress.show(running=2)
        lefts.append(_left(out.getvalue().splitlines()[-1]))
    assert lefts == sorted(lefts, reverse=True) and lefts[0] > lefts[-1]
    assert "2 running (steps 50/100, 0/100)" in out.getvalue().splitlines()[-1]
    clock.now = 31.0
    progress.advanced("b", 50)
    progress.show(running=2)
    assert "2 running (steps 50/100, 50/100)" in out.getvalue().splitlines()[-1]
    clock.now = 40.0
    progress.finished("a", "completed", {"quality.fd": 3.0})
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("[dry-run x] 1/4 done, 1 running (steps 50/100) | best quality.fd 3 (a)")
    assert out.getvalue().count("estimate:") == 1
    assert "\r" not in out.getvalue()  # whole lines, never rewritten in place: a log or a pipe reads them as they are


def test_progress_without_evaluation_windows_estimates_from_the_first_completed_trial() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("sweep y", 3, ("quality.fd", "min"), out=out, every_s=0, steps=100, live=1, clock=clock)
    progress.trial_started("a")
    clock.now = 30.0
    progress.finished("a", "completed", {})
    estimate, line = out.getvalue().splitlines()
    assert estimate == (
        "[sweep y] estimate: ~0:01:00 left for 2 trials, 1 at once (trial a completed in 30 s: ~0:00:30 a trial)"
    )
    assert line.endswith("0:00:30 elapsed, ~0:01:00 left")
    progress.trial_started("b")
    clock.now = 100.0  # b runs longer than the estimate and has not reported: said so, not '0:00:00 left'
    progress.show(running=1)
    assert out.getvalue().splitlines()[-1].endswith("0:01:40 elapsed, 0:00:10 past the estimate")


def test_a_second_report_projects_the_trial_at_its_pace_after_start_up() -> None:
    """30 s to step 50 (mostly start-up), then 5 s to step 75: the trial takes 35 + 25 x 5/25 = 40 s, not 46."""
    clock, out = Clock(), io.StringIO()
    progress = Progress("sweep z", 2, ("quality.fd", "min"), out=out, every_s=0, steps=100, live=1, clock=clock)
    progress.trial_started("a")
    clock.now = 30.0
    progress.advanced("a", 50)
    assert progress.paces["a"] == pytest.approx(60.0)
    clock.now = 35.0
    progress.advanced("a", 75)
    assert progress.paces["a"] == pytest.approx(40.0)
    assert progress.eta == (pytest.approx((2 - 0.75) * 40.0), 35.0)


def test_one_report_with_the_runs_own_clock_pays_start_up_once() -> None:
    """83 s to step 50, of which the run's own clock says 20 s: 63 s of start-up, then 40 s for 100 steps."""
    clock, out = Clock(), io.StringIO()
    progress = Progress("sweep w", 5, ("quality.modes", "max"), out=out, every_s=0, steps=100, live=1, clock=clock)
    progress.trial_started("a")
    clock.now = 83.0
    progress.advanced("a", 50, run_s=20.0)
    assert progress.paces["a"] == pytest.approx(103.0)
    assert "~0:07:43 left for 5 trials" in out.getvalue()  # 4.5 trials x 103 s


def test_a_boolean_setting_is_printed_as_the_study_file_writes_it() -> None:
    from genbench.sweep.summary import _value

    assert (_value(False), _value(True), _value(0.00067134), _value("hinge")) == ("false", "true", "0.0006713", "hinge")
