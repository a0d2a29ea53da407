"""A sweep driver killed with SIGKILL mid-study is resumed to exactly the budgeted number of unique trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pyarrow.dataset as ds
import pytest
from optuna.storages.journal import JournalFileBackend

from genbench.results import ResultsStore
from genbench.shipped import STUDIES

pytestmark = pytest.mark.ray

STUDY = """
study: killed
family: gan
data: {name: ring8, n_train: 1000, n_test: 200}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 6, steps: 150, eval_every: 50}
dry_run: {trials: 6, steps: 150, eval_every: 50}
search: {algorithm: tpe, seed: 0}
fixed: {gan.g_width: 16, gan.d_width: 16, gan.g_depth: 2, gan.d_depth: 2, train.batch_size: 64,
        eval.n_samples: 300}
space:
  gan.loss: {choice: [non_saturating, hinge]}
  optim.lr_g: {float: [1.0e-4, 1.0e-2], log: true}
"""


def _rows(out: Path) -> int:
    return len(list((out / "trials").glob("part-*.parquet")))


def test_sigkill_then_resume_completes_the_budget_once(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(STUDY)
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "genbench", "sweep", str(tmp_path / "s.yaml"), "--out", str(out)]
    # its own session, so that SIGKILL takes the driver and the local Ray it started, as a lost machine would
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _rows(out) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    kept = {p.name for p in (out / "trials").glob("part-*.parquet")}
    assert 2 <= len(kept) < 6
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 6 and trials["trial_id"].is_unique
    # finished trials were not rerun (their parts are merged into one file as the sweep ends: their ids remain)
    assert {n.removeprefix("part-").removesuffix(".parquet") for n in kept} <= ResultsStore(str(out)).trial_ids()
    journal = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    states = [t.state.name for t in optuna.load_study(study_name="killed", storage=journal).trials]
    assert states.count("COMPLETE") >= 6 and "RUNNING" not in states  # the searcher kept what it learnt
    assert "Done: 6 trials" in resumed.stdout


def test_resume_without_results_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from genbench.cli import main

    study = STUDIES / "gan_stability.yaml"
    assert main(["sweep", str(study), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
