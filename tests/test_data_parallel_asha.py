"""ASHA over data-parallel trials: evaluations reach Tune as they happen, a stopped trial's worker group is released."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.dataset as ds
import pytest

from genbench.sweep.resources import HEAD_NODE, ClusterView, concurrency, trial_request
from genbench.sweep.trainable import train_items

# The grid (seed 0) runs lr_g 1e-3, 1.0, 2e-3 in this order. At the first rung (step 20) lr_g 1.0 has thrown the
# generator's samples off the ring (swd above 1 against about 0.6 for the others), so ASHA stops the second trial;
# the third needs the CPUs its worker group held (one 2-worker group fills the 2-CPU private Ray). Tune reports
# are asynchronous: the steps after the rung give the stop time to land before the stopped run would end.
STUDY = """
study: data_parallel_asha
family: gan
data: {name: ring8, n_train: 2000, n_test: 500}
objectives: [{metric: quality.swd, mode: min}]
budget: {trials: 3, steps: 60, eval_every: 20}
dry_run: {trials: 3, steps: 60, eval_every: 20}
search: {algorithm: grid, seed: 0, scheduler: asha, grace_evals: 1, max_concurrent: 1}
resources: {workers: 2}
fixed: {gan.g_width: 16, gan.d_width: 16, gan.g_depth: 2, gan.d_depth: 2, train.batch_size: 64,
        train.log_every: 10, eval.n_samples: 500}
space:
  optim.lr_g: {choice: [2.0e-3, 1.0, 1.0e-3]}
"""


@pytest.mark.ray
def test_asha_stops_a_data_parallel_trial_and_the_next_one_gets_its_cpus(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(STUDY)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "dry-run", str(tmp_path / "s.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=420,
        env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas().sort_values("start_time")
    assert len(trials) == 3 and trials["trial_id"].is_unique
    assert "3 trials x 60 steps of family 'gan', 2 workers each" in proc.stdout
    assert set(trials["train_path"]) == {"ray-train"} and set(trials["workers"]) == {2}
    assert all(len(nodes.split(",")) == 2 for nodes in trials["worker_nodes"])  # one node id per rank
    assert (trials["config.train.threads"] == 1).all()
    assert sorted(p.name for p in (out / "ray_train").iterdir()) == sorted(f"{t}-s0" for t in trials["trial_id"])
    stopped = trials[trials["status"] == "early_stopped"]
    assert list(stopped["config.optim.lr_g"]) == [1.0], trials[["config.optim.lr_g", "status", "quality.swd"]]
    row = stopped.iloc[0]
    assert row["steps"] < 60 and f"stopped by the scheduler (asha) at step {row['steps']}" in row["error"]
    for column in ("cost.wall_s", "cost.device_s", "provenance.n_generated", "stability.grad_norm_max"):
        assert row[column] == row[column] and row[column] is not None, column  # not null, not NaN
    assert row["provenance.n_generated"] == 500 and len(row["worker_nodes"].split(",")) == 2
    assert row["trial_id"] != trials["trial_id"].iloc[-1]  # a trial ran after it: its worker group was released
    assert (trials.loc[trials["status"] == "completed", "steps"] == 60).all()
    history = ds.dataset(out / "history", format="parquet").to_table().to_pandas()
    for trial_id, last in zip(trials["trial_id"], trials["steps"]):
        steps = history.loc[history["trial_id"] == trial_id, "step"].tolist()
        # each step once; the stopped trial's came in its intermediate reports, before the budget's end
        assert steps == list(range(10, last + 1, 10)) and last in (20, 40, 60), (trial_id, last, steps)
    assert history.loc[history["step"] == 20, "eval.swd"].notna().all()


def test_a_data_parallel_trial_demands_its_seeds_worker_groups_side_by_side() -> None:
    study = SimpleNamespace(distributed=True, workers=2, cpus_per_trial=1, gpus_per_worker=0.5)
    eight = ClusterView({"CPU": 8.0, "GPU": 2.0})
    request = trial_request(study, 3, eight)
    assert request.bundles == [{"memory": 2.0**20, HEAD_NODE: 0.001}]  # the driver: no CPU, on the head node
    assert (request.lanes, request.demand) == (2, {"CPU": 4.0, "GPU": 2.0})  # two 2-worker groups hold both GPUs
    assert concurrency(request, eight, 0, 10) == 1 and request.describe() == "2 x (2 CPU + 1 GPU)"
    grows = ClusterView({"CPU": 8.0, "GPU": 2.0}, grows_to={"CPU": 32.0, "GPU": 8.0}, can_grow=True)
    assert trial_request(study, 3, grows).demand == {"CPU": 6.0, "GPU": 3.0}
    assert trial_request(study, 1, eight).demand == {"CPU": 2.0, "GPU": 1.0}


def _passed_on(item: tuple[Any, ...], seen: int) -> tuple[list[tuple[Any, ...]], int]:
    items: list[tuple[Any, ...]] = []

    def collect() -> Iterator[tuple[Any, ...]]:
        nonlocal seen
        seen = yield from train_items(item, seen)

    items.extend(collect())
    return items, seen


def test_a_restarted_worker_groups_reports_pass_on_each_step_once() -> None:
    first = ("train", {"step": 20, "history": [{"step": 10, "x": 1.0}, {"step": 20, "eval.swd": 0.5}], "row": {"a": 1}})
    assert _passed_on(first, 0) == (
        [("partial", {"a": 1}), ("report", 10, {"x": 1.0}), ("report", 20, {"eval.swd": 0.5})],
        20,
    )
    # restarted from its checkpoint at step 10: rank 0 sends its restored history again, then evaluates step 20 anew
    replay = ("train", {"step": 20, "history": [{"step": 10, "x": 1.0}, {"step": 20, "eval.swd": 0.6}], "row": {}})
    assert _passed_on(replay, 20) == ([], 20)
    later = ("train", {"step": 30, "history": [*replay[1]["history"], {"step": 30, "eval.swd": 0.4}], "row": {"b": 2}})
    assert _passed_on(later, 20) == ([("partial", {"b": 2}), ("report", 30, {"eval.swd": 0.4})], 30)
    end = ("end", {"status": "completed"}, [{"step": s} for s in (10, 20, 30, 40)])
    assert _passed_on(end, 30) == ([("report", 40, {}), ("row", {"status": "completed"})], 40)
