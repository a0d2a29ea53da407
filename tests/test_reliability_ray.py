"""Faults during a real sweep: a driver killed inside a results write or a journal append, a trial process killed."""

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

pytestmark = pytest.mark.ray

STUDY = """
study: faults
family: autoregressive
data: {{name: ring8, n_train: 500, n_test: 200}}
objectives: [{{metric: quality.modes, mode: max}}]
budget: {{trials: {trials}, steps: {steps}, eval_every: {every}}}
dry_run: {{trials: {trials}, steps: {steps}, eval_every: {every}}}
search: {{algorithm: tpe, seed: 0, max_concurrent: {concurrent}}}
resources: {{max_failures: {retries}}}
fixed: {{train.batch_size: 32, eval.n_samples: 200}}
space:
  optim.lr: {{float: [1.0e-4, 1.0e-2], log: true}}
"""


def _command(
    tmp_path: Path, trials: int = 5, steps: int = 5, every: int = 5, concurrent: int = 2, retries: int = 2
) -> list[str]:
    (tmp_path / "s.yaml").write_text(
        STUDY.format(trials=trials, steps=steps, every=every, concurrent=concurrent, retries=retries)
    )
    return [sys.executable, "-m", "genbench", "sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]


def _killed_driver(cmd: list[str], fault: str) -> int:
    """Run the driver with GENBENCH_FAULT armed in its own session; afterwards SIGKILL what it left (its Ray)."""
    env = {**os.environ, "GENBENCH_FAULT": fault}
    driver = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    code = driver.wait(timeout=300)
    try:
        os.killpg(driver.pid, signal.SIGKILL)  # the local Ray it started dies with the machine it ran on
    except ProcessLookupError:
        pass
    return code


def _check_complete(out: Path, trials: int, resumed: subprocess.CompletedProcess) -> None:
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    table = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(table) == trials and table["trial_id"].is_unique and set(table["status"]) == {"completed"}
    history = ds.dataset(out / "history", format="parquet").to_table().to_pandas()
    assert set(history["trial_id"]) == set(table["trial_id"])  # no orphan curves, none missing
    assert not list(out.rglob(".tmp-*"))
    states = [
        t.state.name
        for t in optuna.load_study(
            study_name="faults", storage=optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
        ).trials
    ]
    assert "RUNNING" not in states and states.count("COMPLETE") >= trials
    assert f"Done: {trials} trials" in resumed.stdout


def test_driver_killed_inside_a_results_write_then_inside_a_journal_append_then_resumed(tmp_path: Path) -> None:
    cmd, out = _command(tmp_path), tmp_path / "out"
    # study.yaml, then samples + model + history + row of trial 1, then samples + model + history of trial 2, then
    # inside its row
    assert _killed_driver(cmd, "write:9") == 137
    assert len(list((out / "trials").glob("part-*.parquet"))) == 1
    assert len(list((out / "trials").glob(".tmp-*"))) == 1  # the torn write, where no reader looks
    assert _killed_driver([*cmd, "--resume"], "journal:6") == 137  # the resume itself dies inside a journal append
    assert Path(f"{out}/optuna.journal.lock").is_symlink()
    first, *kept_parts = sorted((out / "trials").glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
    first.write_bytes(first.read_bytes()[:200])  # and a finished trial's part is damaged on disk
    kept = {p.name for p in kept_parts}
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert "removed the stale lock" in resumed.stdout and "torn last entry" in resumed.stdout
    assert f"{first} is unreadable; moved to" in resumed.stdout and (first.parent / f"_corrupt-{first.name}").exists()
    _check_complete(out, 5, resumed)  # the damaged trial's configuration ran again
    # finished trials were not rerun (their parts are merged into one file as the sweep ends: their ids remain)
    assert {n.removeprefix("part-").removesuffix(".parquet") for n in kept} <= ResultsStore(str(out)).trial_ids()


def _trial_processes(session: int) -> list[int]:
    """Pids of the Tune trial actors in the driver's session (only processes this test started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session:
                if (entry / "cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                    pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def test_a_killed_trial_process_is_recorded_as_failed_and_the_study_goes_on(tmp_path: Path) -> None:
    # max_failures: 0 (the default, 2, runs it again: see tests/test_cluster_sweep.py)
    cmd, out = _command(tmp_path, trials=3, steps=1500, every=500, concurrent=1, retries=0), tmp_path / "out"
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (pids := _trial_processes(driver.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pids, "no trial process appeared"
        time.sleep(1.0)
        os.kill(pids[0], signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert driver.returncode == 0, stderr[-3000:]
    table = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(table) == 3 and table["trial_id"].is_unique
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1, table[["status", "error"]]
    assert "worker process has died" in failed["error"].iloc[0]  # the reason Ray gave, not a placeholder
    assert (table["status"] == "completed").sum() == 2
    assert "Done: 3 trials" in stdout
