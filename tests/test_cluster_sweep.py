"""Sweeps on an existing Ray cluster (--address): a worker node killed mid-study, an unreachable address."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.ray

STUDY = """
study: node_loss
family: autoregressive
data: {name: ring8, n_train: 500, n_test: 200}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 4, steps: 1500, eval_every: 100}
dry_run: {trials: 4, steps: 1500, eval_every: 100}
search: {algorithm: random, seed: 0}
fixed: {train.batch_size: 32, eval.n_samples: 200}
space:
  optim.lr: {float: [1.0e-4, 1.0e-2], log: true}
"""


def _sweep(tmp_path: Path, address: str) -> list[str]:
    (tmp_path / "s.yaml").write_text(STUDY)
    return [
        sys.executable,
        "-m",
        "genbench",
        "sweep",
        str(tmp_path / "s.yaml"),
        "--out",
        str(tmp_path / "out"),
        "--address",
        address,
    ]


def _trial_on(node: Any, descendants: Callable[[int], list[int]]) -> bool:
    """Whether a Tune trial process (ray::ImplicitFunc) runs on this raylet's node (its workers are its children)."""
    raylet = node.all_processes["raylet"][0].process.pid
    for pid in descendants(raylet):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                return True
        except OSError:
            continue
    return False


def test_a_worker_node_killed_mid_study_loses_no_trial(
    tmp_path: Path, two_nodes: Any, descendants: Callable[[int], list[int]]
) -> None:
    worker = next(iter(two_nodes.worker_nodes))
    driver = subprocess.Popen(
        _sweep(tmp_path, two_nodes.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _trial_on(worker, descendants) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert _trial_on(worker, descendants), "no trial ever ran on the worker node"
        time.sleep(2.0)  # well inside its training, after its first reports (one every 100 steps)
        two_nodes.remove_node(worker, allow_graceful=False)  # the node dies: raylet and workers SIGKILLed
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, stdout[-2000:] + stderr[-3000:]
    lost = re.findall(r"trial (\w+) lost its process or node \(.+\); running it again", stdout)
    assert len(lost) == 1, stdout[-3000:]
    trials = ds.dataset(tmp_path / "out" / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 4 and trials["trial_id"].is_unique, trials[["trial_id", "status"]]
    assert set(trials["status"]) == {"completed"}, trials[["status", "error"]]  # the lost trial ran again
    history = ds.dataset(tmp_path / "out" / "history", format="parquet").to_table().to_pandas()
    for trial_id, steps in history.groupby("trial_id")["step"]:
        assert sorted(steps) == list(range(steps.min(), 1501, steps.min())), trial_id  # each step once
    assert set(history["trial_id"]) == set(trials["trial_id"]) and lost[0] in set(trials["trial_id"])
    assert "Done: 4 trials" in stdout and (tmp_path / "out" / "dashboards" / "index.html").exists()


def test_an_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(_sweep(tmp_path, "127.0.0.1:9"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("genbench: error: cannot reach a Ray cluster at 127.0.0.1:9 (Connection refused)")
    assert "HOST:6379" in lines[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written
