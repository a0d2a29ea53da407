"""Real sweeps on a private local Ray: seeds with per-seed rows and aggregates, a Pareto front, ASHA stopping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml

from genbench.results.analysis import configurations, seed_aggregate

pytestmark = pytest.mark.ray

COMMON = """
data: {name: ring8, n_train: 2000, n_test: 500}
fixed: {gan.g_width: 16, gan.d_width: 16, gan.g_depth: 2, gan.d_depth: 2, train.batch_size: 64,
        train.log_every: 5, eval.n_samples: 500, optim.lr_d: 2.0e-3}
"""
SEEDS_STUDY = (
    """
study: tiny_seeds
family: gan
objectives: [{metric: quality.modes, mode: max}, {metric: stability.seed_cv, mode: min}]
budget: {trials: 4, steps: 60, eval_every: 20, seeds: 2}
dry_run: {trials: 4, steps: 60, eval_every: 20, seeds: 2}
search: {algorithm: random, seed: 0}
space:
  gan.loss: {choice: [non_saturating, hinge]}
  optim.lr_g: {choice: [1.0e-3, 100.0]}   # 100 diverges: a configuration whose seeds all fail
"""
    + COMMON
)
ASHA_STUDY = (
    """
study: tiny_asha
family: gan
objectives: [{metric: quality.swd, mode: min}]
budget: {trials: 4, steps: 90, eval_every: 10}
dry_run: {trials: 4, steps: 90, eval_every: 10}
search: {algorithm: grid, seed: 0, scheduler: asha, grace_evals: 3, max_concurrent: 1}
space:
  optim.lr_g: {choice: [2.0e-3, 1.0e-3, 1.0e-7, 2.0e-7]}
"""
    + COMMON
)


def _dry_run(root: Path, text: str) -> tuple[subprocess.CompletedProcess, Path]:
    study, out = root / "study.yaml", root / "results"
    study.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "dry-run", str(study), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, out


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    return _dry_run(tmp_path_factory.mktemp("seeds"), SEEDS_STUDY)


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    return _dry_run(tmp_path_factory.mktemp("asha"), ASHA_STUDY)


def test_every_configuration_has_one_row_per_seed(seeds_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = seeds_run
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    assert len(trials) == 8 and trials["config_id"].nunique() == 4
    for config_id, rows in trials.groupby("config_id"):
        assert sorted(rows["seed"]) == [0, 1]
        assert sorted(rows["trial_id"]) == [f"{config_id}_s0", f"{config_id}_s1"]
        assert rows.filter(like="config.").nunique(dropna=False).max() == 1  # the same settings
    assert "4 trials (8 runs: 2 seeds each)" in proc.stdout


def test_seed_aggregates_are_recomputable_from_the_rows(seeds_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    trials = ds.dataset(seeds_run[1] / "trials").to_table().to_pandas()
    for _, rows in trials.groupby("config_id"):
        expected = seed_aggregate(rows.to_dict("records"), "quality.modes")
        for key in ("stability.seed_std", "stability.seed_cv", "stability.success_rate"):
            assert rows[key].nunique(dropna=False) == 1
            assert rows[key].iloc[0] == pytest.approx(expected[key], nan_ok=True)
    diverged = trials[trials["config.optim.lr_g"] == 100.0]
    assert len(diverged) and (diverged["stability.success_rate"] == 0.0).all()
    assert (diverged["status"] == "diverged").all() and (diverged["steps"] < 60).all()


def test_each_seed_keeps_its_own_model_and_a_diverged_one_none(
    seeds_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    """Seeds trained as Ray tasks: each finished seed's model under its own trial id, the scores of its row again;
    a diverged seed keeps none, and asking for it says so."""
    import genbench
    from genbench.errors import GenbenchError

    results = genbench.load_results(seeds_run[1])
    trials = results.trials
    finished = trials[trials["status"] != "diverged"]
    assert results.store.model_ids() == sorted(finished["trial_id"]) and len(finished) >= 2
    row = finished.iloc[-1]
    model = results.model(config=row["config_id"], seed=int(row["seed"]))
    assert model.trial_id == row["trial_id"] and model.cfg.seed == row["seed"]
    assert model.evaluate()["quality.swd"] == row["quality.swd"]
    diverged = trials[trials["status"] == "diverged"]["trial_id"].iloc[0]
    with pytest.raises(GenbenchError, match=f"trial '{diverged}' kept no model: its status is diverged"):
        results.model(diverged)


def test_history_rows_belong_to_their_seed(seeds_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = seeds_run[1]
    history = ds.dataset(out / "history").to_table().to_pandas()
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    assert set(history["trial_id"]) == set(trials["trial_id"])
    completed = trials[trials["status"] == "completed"]["trial_id"]
    for trial_id in completed:
        assert history[history["trial_id"] == trial_id]["eval.modes"].notna().sum() == 3  # steps 20, 40, 60


def test_multi_objective_study_records_its_pareto_front(seeds_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = seeds_run[1]
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    front = {p["config_id"] for p in summary["pareto_front"]}
    table = configurations(ds.dataset(out / "trials").to_table().to_pandas()).dropna(
        subset=["quality.modes", "stability.seed_cv"]
    )
    assert front and front <= set(table["config_id"])
    for config_id in front:
        me = table[table["config_id"] == config_id].iloc[0]
        q, cv = table["quality.modes"], table["stability.seed_cv"]
        better = table[
            (q >= me["quality.modes"])
            & (cv <= me["stability.seed_cv"])
            & ((q > me["quality.modes"]) | (cv < me["stability.seed_cv"]))
        ]
        assert better.empty, config_id
        entry = next(p for p in summary["pareto_front"] if p["config_id"] == config_id)
        assert (
            entry["family"] == "gan"
            and entry["seeds"] == 2
            and entry["quality.modes"] == pytest.approx(me["quality.modes"])
            and entry["searched"] == {"gan.loss": me["config.gan.loss"], "optim.lr_g": me["config.optim.lr_g"]}
        )
    assert "Pareto front (quality.modes max, stability.seed_cv min): " in seeds_run[0].stdout
    assert "estimate: " in seeds_run[0].stdout  # an objective known only at the end no longer hides the progress
    curve = pd.read_parquet(out / "budget_curve.parquet")
    assert set(curve["group"]) == {"all", "config.gan.loss"} and curve["trials"].max() == 4


def test_asha_stops_a_losing_trial_and_says_so(asha_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = asha_run
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    assert len(trials) == 4 and trials["trial_id"].is_unique
    stopped = trials[trials["status"] == "early_stopped"]
    assert len(stopped) >= 1 and (stopped["steps"] < 90).all()
    assert stopped["error"].str.contains("stopped by the scheduler \\(asha\\)").all()
    assert (trials[trials["status"] == "completed"]["steps"] == 90).all()
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["early_stopping"]["runs_stopped"] == len(stopped)
    assert summary["early_stopping"]["steps_saved"] == int((90 - stopped["steps"]).sum())
    assert "Early stopping:" in proc.stdout


def test_asha_stopped_trials_are_pruned_for_optuna_and_left_out_of_importances(
    asha_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    """Optuna learns a trial ASHA stopped as PRUNED (its last evaluation is a partial score, kept as an intermediate
    value for TPE) and a finished one as COMPLETE with its final score; importances count finished trials only, and
    three or fewer of them are too few for any."""
    import optuna

    proc, out = asha_run
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    learned = optuna.load_study(study_name="tiny_asha", storage=storage).get_trials(deepcopy=False)
    by_state = {
        state: sorted(t.params["optim.lr_g"] for t in learned if t.state == state)
        for state in (optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE)
    }
    stopped, completed = trials["status"] == "early_stopped", trials["status"] == "completed"
    assert by_state[optuna.trial.TrialState.PRUNED] == sorted(trials.loc[stopped, "config.optim.lr_g"])
    assert by_state[optuna.trial.TrialState.COMPLETE] == sorted(trials.loc[completed, "config.optim.lr_g"])
    assert all(t.intermediate_values for t in learned if t.state.name == "PRUNED")
    finished = {t.params["optim.lr_g"]: t.values[0] for t in learned if t.state.name == "COMPLETE"}
    for row in trials[completed].to_dict("records"):
        assert finished[row["config.optim.lr_g"]] == pytest.approx(row["quality.swd"])
    assert yaml.safe_load((out / "summary.yaml").read_text())["importances"] == {}
    assert "Importance for" not in proc.stdout


def test_asha_stopped_rows_carry_cost_provenance_and_stability(
    asha_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    """A stopped trial's row holds what it spent and how it was scored as of its last evaluation, so study totals,
    the cost page and the early-stopping savings count it; and its quality provenance matches the others'."""
    _, out = asha_run
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    stopped = trials[trials["status"] == "early_stopped"]
    columns = [
        "cost.wall_s",
        "cost.device_s",
        "cost.params",
        "cost.train_flops",
        "cost.peak_mem_bytes",
        "provenance.extractor",
        "provenance.n_generated",
        "provenance.sampler",
        "stability.diverged",
        "stability.steps_to_diverge",
        "stability.grad_norm_max",
    ]
    assert stopped[columns].notna().all().all(), stopped[columns]
    assert (stopped["cost.device_s"] > 0).all() and (stopped["cost.device"] == "cpu").all()
    assert (stopped["cost.gpu_share"] == 0.0).all() and (stopped["cost.visible_devices"] == "").all()
    assert trials["provenance.extractor"].nunique() == 1 and trials["provenance.n_generated"].nunique() == 1
    flops_per_step = trials["cost.train_flops"] / trials["steps"]
    assert flops_per_step.max() == pytest.approx(flops_per_step.min())  # counted up to the step each one reached
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["early_stopping"]["device_s_spent"] == pytest.approx(trials["cost.device_s"].sum())
