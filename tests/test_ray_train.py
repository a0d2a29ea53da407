"""Ray Train: data-parallel workers on one node and on two raylets, and recovery from a killed worker."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import torch

pytestmark = pytest.mark.ray

SMALL = [
    "--set",
    "train.batch_size=64",
    "--set",
    "data.n_train=2000",
    "--set",
    "data.n_test=500",
    "--set",
    "eval.n_samples=500",
    "--set",
    "train.log_every=10",
]


def _train(
    family: str, out: Path, steps: int, *extra: str, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "genbench",
        "train",
        family,
        "--data",
        "grid25",
        "--out",
        str(out),
        *SMALL,
        "--set",
        f"train.steps={steps}",
        "--set",
        f"eval.every={steps // 4}",
        "--set",
        f"train.checkpoint_every={steps // 4}",
        *extra,
    ]
    if not wait:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=out.parent)
    return subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=out.parent)


def _results(out: Path) -> tuple[dict, list[int]]:
    trials = ds.dataset(out / "trials").to_table().to_pylist()
    steps = ds.dataset(out / "history").to_table().column("step").to_pylist()
    assert len(trials) == 1
    return trials[0], steps


# One family each: the Ray Train path is the same for every family (tests/test_data_parallel.py checks each
# family's gradient averaging without Ray); the GAN's runs through it in test_data_parallel_asha.py and below.
@pytest.mark.parametrize("family", ["autoregressive"])
def test_two_workers_train_and_the_results_record_both(tmp_path: Path, family: str) -> None:
    out = tmp_path / "run"
    proc = _train(family, out, 80, "--workers", "2")  # evaluations every 20: on the log windows
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    row, steps = _results(out)
    assert row["status"] == "completed" and row["steps"] == 80
    assert row["train_path"] == "ray-train" and row["workers"] == 2 and len(row["worker_nodes"].split(",")) == 2
    assert steps == list(range(10, 81, 10))  # rank 0's history: every window once
    assert f"[train {family}] step 80/80" in proc.stdout and "on 2 workers" in proc.stdout
    import genbench  # rank 0's final model travels in row.json; scored again, it gives the row's quality

    assert genbench.load_results(out).evaluate()["quality.swd"] == row["quality.swd"]


def _train_worker(pids: list[int], rank_hint: str = "RayTrainWorker") -> int | None:
    for pid in pids:
        try:
            if rank_hint in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return pid
        except OSError:
            continue
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # Ray deleted it since the glob (CheckpointConfig.num_to_keep)
        return -math.inf


def _latest_checkpoint_step(out: Path) -> int:
    """The step of the newest checkpoint in Ray Train's storage that Ray has finished writing (0 if none yet).

    Ray copies each file of a checkpoint into place (pyarrow copy_files, no rename): a state.pt still being
    copied is torn (EOFError, or torch's zip reader finding no central directory), and an old checkpoint may be
    deleted between the glob and the read. Both are skipped for the next newest; the caller polls again.
    """
    for state in sorted(out.glob("ray_train/*/checkpoint_*/state.pt"), key=_mtime, reverse=True):
        try:
            return torch.load(state, weights_only=True)["loop"]["step"]
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError):
            continue
    return 0


@pytest.mark.parametrize("keep", [0, 1, 60, 0.5, 0.9])  # bytes of the newest state.pt copied so far (or a fraction)
def test_the_checkpoint_poll_skips_a_state_still_being_copied(tmp_path: Path, keep: float) -> None:
    """Seen in one of two fresh-clone runs: the poll read state.pt while Ray was copying it (EOFError)."""
    older, newer = (tmp_path / "ray_train" / "run" / f"checkpoint_{i}" / "state.pt" for i in (1, 2))
    for path, step in ((older, 500), (newer, 1000)):
        path.parent.mkdir(parents=True)
        torch.save({"loop": {"step": step}, "family": {"w": torch.zeros(256)}}, path)
    assert _latest_checkpoint_step(tmp_path) in (500, 1000)
    whole = newer.read_bytes()
    newer.write_bytes(whole[: int(keep * len(whole)) if keep < 1 else int(keep)])
    os.utime(newer, (time.time() + 5, time.time() + 5))  # the newest, as it is while Ray copies it
    assert _latest_checkpoint_step(tmp_path) == 500
    newer.write_bytes(whole)
    assert _latest_checkpoint_step(tmp_path) == 1000


def test_a_killed_worker_resumes_from_its_last_checkpoint(tmp_path: Path, descendants: Callable) -> None:
    out, steps, every = tmp_path / "run", 1200, 300  # killed after step 600: 600 steps left
    proc = _train("gan", out, steps, "--workers", "2", wait=False)
    try:
        deadline = time.monotonic() + 600
        while _latest_checkpoint_step(out) < 2 * every and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        # The newest checkpoint may be on disk but not yet registered; the one before it is.
        registered = _latest_checkpoint_step(out) - every
        worker = _train_worker(descendants(proc.pid))
        assert registered >= every and worker is not None, "no checkpoint or no worker to kill"
        os.kill(worker, signal.SIGKILL)
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-4000:]
    row, history = _results(out)
    assert row["status"] == "completed" and row["steps"] == steps
    resumed = [int(s) for s in row["resumed_from"].split(",") if s]
    assert len(resumed) == 1 and registered <= resumed[0] < steps, (row["resumed_from"], registered)
    assert history == list(range(10, steps + 1, 10))  # no gap, no repeated step


@pytest.mark.parametrize("family", ["flow"])
def test_spread_workers_run_one_per_node_on_two_raylets(tmp_path: Path, two_nodes: object, family: str) -> None:
    out = tmp_path / "run"
    proc = _train(family, out, 120, "--workers", "2", "--placement", "spread", "--address", two_nodes.address)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    row, steps = _results(out)
    assert row["status"] == "completed" and row["workers"] == 2
    assert len(set(row["worker_nodes"].split(","))) == 2  # one worker on each raylet
    assert steps == list(range(10, 121, 10))
