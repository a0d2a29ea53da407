"""A real sweep's driver: one per results directory, Ctrl-C and SIGTERM are interruptions, resume checks the study,
a failed write ends it in one line; each then resumes to exactly its budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from genbench.results.lock import LOCK_NAME

pytestmark = pytest.mark.ray

STUDY = """
study: interrupted
family: autoregressive
data: {data}
objectives: [{{metric: quality.modes, mode: max}}]
budget: {{trials: 4, steps: {steps}, eval_every: 100}}
dry_run: {{trials: 4, steps: {steps}, eval_every: 100}}
search: {{algorithm: tpe, seed: 0, max_concurrent: 1}}
fixed: {{train.batch_size: 32, eval.n_samples: 200}}
space:
  optim.lr: {{float: [{low}, 1.0e-2], log: true}}
"""
RING8 = "{name: ring8, n_train: 500, n_test: 200}"


def _study(root: Path, data: str = RING8, steps: int = 300, low: str = "1.0e-4") -> Path:
    path = root / "s.yaml"
    path.write_text(STUDY.format(data=data, steps=steps, low=low))
    return path


def _start(study: Path, out: Path, cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genbench", "sweep", str(study), "--out", str(out)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **env},
    )


def _genbench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genbench", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _wait(check: object, driver: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        assert driver.poll() is None, f"the driver ended before {what}: {driver.communicate()}"
        time.sleep(0.2)
    assert check(), f"no {what} in {timeout} s"


def _rows(out: Path) -> int:
    return len(list((out / "trials").glob("part-*.parquet")))


def _complete_once(out: Path, resumed: subprocess.CompletedProcess) -> None:
    """The resumed study holds its budget exactly: every trial once, every history step once."""
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "Done: 4 trials" in resumed.stdout and "Traceback" not in resumed.stderr
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 4 and trials["trial_id"].is_unique
    history = ds.dataset(out / "history", format="parquet").to_table().to_pandas()
    assert not history.duplicated(["trial_id", "step"]).any() and set(history["trial_id"]) == set(trials["trial_id"])
    assert not (out / LOCK_NAME).exists()


def test_a_second_driver_is_refused_and_sigterm_leaves_the_study_to_resume(tmp_path: Path) -> None:
    study, out = _study(tmp_path), tmp_path / "out"
    first = _start(study, out, tmp_path)
    try:
        _wait(lambda: (out / LOCK_NAME).exists() and (out / "study.yaml").exists(), first, "lock")
        for extra in ([], ["--resume"]):
            second = _genbench(tmp_path, "sweep", str(study), "--out", str(out), *extra)
            lines = second.stderr.strip().splitlines()
            assert second.returncode == 2 and len(lines) == 1, second.stderr
            assert f"in use by another genbench driver (pid {first.pid} on " in lines[0]
        _wait(lambda: _rows(out) >= 1, first, "row")
        first.send_signal(signal.SIGTERM)  # `kill PID`, or `ray job stop` to a job's entrypoint
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "Done:" not in stdout and "--resume` completes the study" in stderr
    assert 1 <= _rows(out) < 4 and not (out / "summary.yaml").exists()
    _complete_once(out, _genbench(tmp_path, "sweep", str(study), "--out", str(out), "--resume"))


def test_ctrl_c_then_a_changed_study_is_refused_and_the_same_one_resumes(tmp_path: Path) -> None:
    study, out = _study(tmp_path), tmp_path / "out"
    driver = _start(study, out, tmp_path)
    try:
        _wait(lambda: _rows(out) >= 1, driver, "row")
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130 and "Interrupted: " in stderr, stdout[-2000:] + stderr[-2000:]
    (tmp_path / "changed").mkdir()
    changed = _study(tmp_path / "changed", low="1.0e-5")
    refused = _genbench(tmp_path, "sweep", str(changed), "--out", str(out), "--resume")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "study.yaml: space: these results were made with" in refused.stderr
    _complete_once(out, _genbench(tmp_path, "sweep", str(study), "--out", str(out), "--resume"))


def test_a_failed_write_ends_the_sweep_in_one_line_and_relative_data_paths_reach_the_trials(tmp_path: Path) -> None:
    """data.path is relative to where genbench runs (Tune runs trials elsewhere); a full disk at the 6th results
    write ends the sweep with one line, and --resume completes it."""
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 600)
    np.save(tmp_path / "circle.npy", np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32))
    study, out = _study(tmp_path, data="{name: files, path: circle.npy}", steps=100), tmp_path / "out"
    failed = _start(study, out, tmp_path, GENBENCH_FAULT="write-error:6")
    stdout, stderr = failed.communicate(timeout=300)
    lines = stderr.strip().splitlines()
    assert failed.returncode == 2 and "Traceback" not in stderr, stdout[-2000:] + stderr[-3000:]
    assert lines[-1].startswith(f"genbench: error: {out}: cannot write results (No space left on device")
    assert lines[-1].endswith("then run again with --resume") and "lost its process" not in stdout
    assert _rows(out) < 4 and not list(out.rglob(".tmp-*"))
    _complete_once(out, _genbench(tmp_path, "sweep", str(study), "--out", str(out), "--resume"))
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert set(trials["config.data.path"]) == {str(tmp_path / "circle.npy")}
    assert set(trials["status"]) == {"completed"}, trials[["status", "error"]]
