"""A real sweep on a private local Ray through the CLI: Parquet rows, a diverged trial recorded, dashboards built."""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
import yaml

pytestmark = pytest.mark.ray

TINY_STUDY = """
study: tiny_ray
family: gan
data: {name: ring8, n_train: 2000, n_test: 500}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 4, steps: 40, eval_every: 20}
dry_run: {trials: 4, steps: 40, eval_every: 20}
search: {algorithm: random, seed: 3}
results: {save_models: false}
fixed: {gan.g_width: 16, gan.d_width: 16, gan.g_depth: 2, gan.d_depth: 2, train.batch_size: 64,
        train.log_every: 5, eval.n_samples: 500}
space:
  gan.loss: {choice: [non_saturating, hinge]}
  gan.penalty: {choice: [none, r1]}
  gan.penalty_weight: {float: [0.1, 10.0], log: true, when: {gan.penalty: [r1]}}
  optim.lr_g: {choice: [1.0e-4, 100.0]}   # 100 diverges within a few steps: the sweep must go on
"""
# The trackers of docs/tracking.md: TensorBoard (tensorboardX comes with Ray Tune), MLflow where it is installed (the
# test extras install mlflow-skinny), in its local file store in the run's folder: MLflow 3 wants
# MLFLOW_ALLOW_FILE_STORE=true for it, and its SQLite store would spend ~5 s of CPU creating its tables
MLFLOW = importlib.util.find_spec("mlflow") is not None
TRACKING = "tracking: {tensorboard: true" + (", mlflow: {tracking_uri: mlruns}}" if MLFLOW else "}")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    root = tmp_path_factory.mktemp("sweep")
    study = root / "tiny.yaml"
    study.write_text(TINY_STUDY + TRACKING + "\n")
    out = root / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "dry-run", str(study), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    return proc, out


def test_dry_run_succeeds_and_says_where_results_are(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = dry_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Dashboard: {out}/dashboards/index.html" in proc.stdout
    assert "[dry-run tiny_ray] 4/4 done" in proc.stdout


def test_dry_run_estimates_its_length_and_names_its_winner(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    """An estimate from the first evaluation window (step 20 of 40), then the best configuration with its family,
    searched keys (gan.penalty_weight only where gan.penalty is r1) and non-default keys, as summary.yaml holds it."""
    proc, out = dry_run
    assert re.search(
        r"^\[dry-run tiny_ray\] estimate: ~\d:\d\d:\d\d left for \d trials, \d at once \(trial \w+ "
        r"reached step 20 of 40 in \d+ s, its first evaluation window",
        proc.stdout,
        re.M,
    ), proc.stdout
    best = yaml.safe_load((out / "summary.yaml").read_text())["best"]
    assert set(best["searched"]) == {"gan.loss", "gan.penalty", "optim.lr_g"} | (
        {"gan.penalty_weight"} if best["searched"]["gan.penalty"] == "r1" else set()
    )
    assert best["not_default"]["gan.g_width"] == 16 and best["config"]["optim.lr_g"] == best["searched"]["optim.lr_g"]
    lines = proc.stdout.splitlines()
    i = lines.index(next(line for line in lines if line.startswith("Best configuration: ")))
    status = "" if best["status"] == "completed" else f", not completed: {best['status']}"  # a tie: the first done
    modes = f"{best['quality.modes']:.4g}"
    assert lines[i] == f"Best configuration: gan (trial {best['config_id']}{status}): quality.modes {modes}"
    assert lines[i + 1].startswith(f"  searched: gan.loss {best['searched']['gan.loss']}, gan.penalty ")
    assert "; not at the family's default: " in lines[i + 1] and "gan.g_width 16" in lines[i + 1]


def test_one_row_per_trial_with_config_status_and_quality(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    _, out = dry_run
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert {
        "config.gan.loss",
        "config.optim.lr_g",
        "config.train.steps",
        "quality.modes",
        "quality.hq_fraction",
        "stability.diverged",
        "cost.wall_s",
        "status",
    } <= set(trials.columns)
    assert set(trials["status"]) <= {"completed", "diverged"}
    assert (trials["config.train.steps"] == 40).all()


def test_unstable_trials_end_diverged_and_stable_ones_complete(
    dry_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    _, out = dry_run
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    huge = trials["config.optim.lr_g"] == 100.0
    assert huge.any() and (~huge).any(), "the seeded random search should sample both learning rates"
    assert (trials.loc[huge, "status"] == "diverged").all()
    assert (trials.loc[huge, "stability.steps_to_diverge"] >= 1).all()
    assert (trials.loc[~huge, "status"] == "completed").all()


def test_history_and_conditional_params(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    _, out = dry_run
    history = ds.dataset(out / "history", format="parquet").to_table().to_pandas()
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    completed = trials.loc[trials["status"] == "completed", "trial_id"]
    for trial_id in completed:
        steps = history.loc[history["trial_id"] == trial_id, "step"].tolist()
        assert steps == list(range(5, 41, 5))  # one row per log window, none lost between reports
    r1 = trials["config.gan.penalty"] == "r1"
    assert trials.loc[r1, "config.gan.penalty_weight"].between(0.1, 10.0).all()
    evals = history.dropna(subset=["eval.modes"])
    assert set(evals["step"]) <= {20, 40}
    assert (out / "study.yaml").exists() and (out / "dashboards" / "stability.html").exists()


def test_every_completed_trial_has_its_final_samples(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    import numpy as np

    _, out = dry_run
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    for trial_id, status in zip(trials["trial_id"], trials["status"]):
        path = out / "samples" / f"{trial_id}.npy"
        if status == "completed" or path.exists():  # a diverged generator has a file where its samples are finite
            points = np.load(path, allow_pickle=False)
            assert points.shape[1] == 2 and len(points) <= 500 and np.isfinite(points).all()
        if status == "completed":
            assert len(np.load(path)) == 500  # eval.n_samples points of ring8
    assert set(trials["provenance.sampler"].dropna()) == {"generator pass"}


def tensorboard_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of a TensorBoard event file by tag, as (step, value): its records are length-prefixed Event
    protocol buffers (TFRecord framing: length, its CRC, data, the data's CRC)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    data = path.read_bytes()
    at = 0
    while at + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_trackers_get_each_trials_curves_final_metrics_and_config(
    dry_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    """`tracking:` TensorBoard: one event file per trial in results/ray/, with every history step's train.* and
    eval.* values at their step and the final quality at the last; MLflow (where installed): one run per trial with
    its searched settings as parameters and the same curves."""
    _, out = dry_run
    trials = ds.dataset(out / "trials").to_table().to_pandas()
    history = ds.dataset(out / "history").to_table().to_pandas()
    for row in trials.to_dict("records"):
        (events,) = out.glob(f"ray/*/trial_main_{row['trial_id']}_*/events.out.tfevents.*")
        scalars = tensorboard_scalars(events)
        mine = history[(history["trial_id"] == row["trial_id"]) & np.isfinite(history["train.loss_d"])]
        assert [s for s, _ in scalars["ray/tune/train.loss_d"]] == mine["step"].tolist()  # finite values only
        assert [v for _, v in scalars["ray/tune/train.loss_d"]] == pytest.approx(
            mine["train.loss_d"].tolist(), rel=1e-5
        )
        if row["status"] == "completed":
            assert scalars["ray/tune/eval.modes"][-1][0] == 40
            assert scalars["ray/tune/quality.modes"][-1] == (40, pytest.approx(row["quality.modes"]))
    if not MLFLOW:
        return
    # MLflow's file store read as files (importing mlflow here would cost seconds): mlruns/EXPERIMENT/RUN/ holds
    # meta.yaml (run_name), params/KEY (the value) and metrics/KEY (lines 'timestamp value step')
    (experiment,) = [p.parent for p in (out.parent / "mlruns").glob("*/meta.yaml") if "name: tiny_ray" in p.read_text()]
    runs = {yaml.safe_load((p / "meta.yaml").read_text())["run_name"]: p for p in experiment.iterdir() if p.is_dir()}
    assert {name.removeprefix("trial_main_") for name in runs} == set(trials["trial_id"])
    for row in trials.to_dict("records"):
        run = runs[f"trial_main_{row['trial_id']}"]
        assert (run / "params" / "gan.loss").read_text() == row["config.gan.loss"]
        steps = [int(line.split()[2]) for line in (run / "metrics" / "train.loss_d").read_text().splitlines()]
        mine = history[(history["trial_id"] == row["trial_id"]) & np.isfinite(history["train.loss_d"])]
        assert steps == mine["step"].tolist()


def test_a_study_that_keeps_no_models_writes_none(dry_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    """results: {save_models: false}: no models/ folder, the record says so, and sampling says why it cannot."""
    import genbench
    from genbench.errors import GenbenchError

    _, out = dry_run
    assert not (out / "models").exists() and (out / "samples").is_dir()
    results = genbench.load_results(out)
    assert results.study["save_models"] is False
    with pytest.raises(GenbenchError, match=r"the study kept no models \(results: \{save_models: false\}"):
        results.sample(8)
