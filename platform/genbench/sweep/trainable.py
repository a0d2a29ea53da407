"""The function each Ray Tune trial runs: one configuration under each of its seeds, reported in eval-sized chunks."""
from __future__ import annotations

import functools
import math
import os
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from ray import tune

from genbench.errors import GenbenchError
from genbench.results.analysis import seed_aggregate
from genbench.train.device import Assignment
from genbench.train.run import run

Item = tuple[Any, ...]  # ("report", step, values), ("partial", row) ... then ("row", row) or ("error", message)
_warned_cuda: list[bool] = []


class Cancelled(BaseException):
    """Raised inside a run's report callback once its trial is stopped; a BaseException so run() does not record it."""


def ray_assignment(gpu_share: float) -> Assignment:
    """The device Ray gave this process (a trial or a seed's task), as the run must use it.

    Ray 2.60 sets CUDA_VISIBLE_DEVICES only for a task or actor that holds GPUs: in one that holds none it is
    unset, so torch would see every GPU of the node. A run without a GPU share hides them all from itself before
    torch looks, so that it trains on the CPU and Ray's accounting of the node's GPUs stays true. The row records
    the ids as the process then sees them ('' none; 'all' had the variable stayed unset).
    """
    import ray

    if not ray.is_initialized():  # not in a Ray worker (a test, a plain script): train.device decides
        return Assignment()
    if not ray.get_gpu_ids():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    if not ray.get_gpu_ids():
        return Assignment(torch.device("cpu"), 0.0, visible)
    if torch.cuda.is_available():
        return Assignment(torch.device("cuda", 0), gpu_share, visible)  # Ray's GPU is this process's first one
    if not _warned_cuda:  # e.g. a CPU build of torch on a GPU node: the share is held, the run trains on the CPU
        _warned_cuda.append(True)
        print(f"genbench: warning: Ray gave this trial GPU {visible} but torch {torch.__version__} sees no CUDA "
              "device; it trains on the CPU", file=sys.stderr, flush=True)
    return Assignment(torch.device("cpu"), gpu_share, visible)


def run_stream(flat: dict[str, Any], gpu_share: float = 0.0) -> Iterator[Item]:
    """run(flat) as a stream: its reports and snapshots as they happen, then its row. Closing the stream stops
    the run. The run trains in a thread so that the consumer can aggregate seeds and report to Tune meanwhile.
    """
    items: queue.Queue[Item] = queue.Queue()
    stop = threading.Event()
    assignment = ray_assignment(gpu_share)

    def report(step: int, values: dict[str, float]) -> None:
        if stop.is_set():
            raise Cancelled
        items.put(("report", step, values))

    def work() -> None:
        try:
            row = run(flat, report, assignment=assignment, snapshot=lambda r: items.put(("partial", r)))
            items.put(("row", {**row, "worker_nodes": _node_id()}))
        except Cancelled:
            pass
        except Exception as exc:  # a GenbenchError (bad data or settings): the trial fails with its message
            items.put(("error", f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=work, name=f"seed-{flat.get('seed', 0)}", daemon=True).start()
    try:
        while True:
            item = items.get()
            yield item
            if item[0] not in ("report", "partial"):
                return
    finally:
        stop.set()


def _node_id() -> str:
    """The Ray node this run trained on ('' outside Ray): which node of a cluster ran each trial."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


@functools.cache
def _seed_task() -> Any:
    """run_stream as a Ray streaming task, registered once per process (a reused trial worker runs many)."""
    import ray

    return ray.remote(num_returns="streaming", max_retries=0)(run_stream)


def _remote_stream(flat: dict[str, Any], cpus: int, gpus: float) -> Iterator[Item]:
    """The same stream from a Ray task in one of the trial's placement-group bundles (a seed on its own CPUs and
    GPU share)."""
    import ray

    refs = _seed_task().options(num_cpus=cpus, num_gpus=gpus).remote(flat, gpus)
    try:
        for ref in refs:
            yield ray.get(ref)
    finally:
        ray.cancel(refs, force=True)


@dataclass
class Lane:
    """One seed of the trial: its stream, the history it reported, its latest evaluation, its row as of that
    evaluation (a stopped trial's row) and, at the end, its final row."""

    seed: int
    stream: Iterator[Item]
    history: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, float] = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] | None = None

    def advance(self) -> None:
        """Read the stream up to this seed's next evaluation, or its end."""
        for item in self.stream:
            if item[0] == "error":
                raise GenbenchError(item[1])
            if item[0] == "partial":
                self.partial = {**item[1], "seed": self.seed}
                continue
            if item[0] == "row":
                self.row = {**item[1], "seed": self.seed}
                self.latest.update({k: v for k, v in item[1].items() if k.startswith("quality.")})
                return
            step, values = item[1], item[2]
            self.history.append({"seed": self.seed, "step": step, **values})
            evals = {f"quality.{k[5:]}": v for k, v in values.items() if k.startswith("eval.")}
            if evals:
                self.latest.update(evals)
                return
        raise GenbenchError(f"seed {self.seed} ended without a result (its worker process died)")


def _mean_latest(lanes: list[Lane]) -> dict[str, float]:
    keys = {k for lane in lanes for k in lane.latest}
    values = {k: [lane.latest[k] for lane in lanes if math.isfinite(lane.latest.get(k, math.nan))] for k in keys}
    return {k: sum(v) / len(v) if v else math.nan for k, v in values.items()}


def trial_main(config: dict[str, Any], objectives: tuple[str, ...] = (), intermediate: bool = True,
               seeds: int = 1, cpus: int = 1, gpus: float = 0.0, spread_metric: str = "",
               threshold: tuple[str, str, float] | None = None, workers: Any = None, storage: str = "") -> None:
    """Train `config` under `seeds` seeds in lockstep; every evaluation reports the seeds' mean quality.*.

    One seed trains in this process; several train as Ray tasks in the trial's placement group, each with `cpus`
    CPUs and a `gpus` share. Every intermediate report carries each seed's row as of that evaluation
    (`partial_rows`: cost, provenance and stability so far), which is what a stopped trial's rows hold. The final
    report carries `final: True`, the seed aggregate (mean metrics, seed_std, seed_cv, success_rate), every
    objective (NaN where none was measured, so that Optuna records a failure) and the per-seed rows.
    `intermediate` is False when an objective is known only at the end (cost, stability). With `workers`
    (a train.ray_worker.Workers), each seed trains data-parallel through Ray Train instead: see distributed_trial.
    """
    if workers is not None:
        distributed_trial(config, objectives, seeds, workers, storage, spread_metric, threshold)
        return
    base = int(config.get("seed", 0))
    flats = [{**config, "seed": base + i} for i in range(seeds)]
    lanes = [Lane(f["seed"], run_stream(f, gpus) if seeds == 1 else _remote_stream(f, cpus, gpus)) for f in flats]
    try:
        while any(lane.row is None for lane in lanes):
            for lane in lanes:
                if lane.row is None:
                    lane.advance()
            step = max((h["step"] for lane in lanes for h in lane.history[-1:]), default=0)
            # The last evaluation goes out with the final report: a scheduler stops a trial at max_t, before it.
            if intermediate and any(lane.row is None for lane in lanes) and step < config["train.steps"]:
                tune.report({"step": step, **_mean_latest(lanes), "history": _drain(lanes),
                             "partial_rows": [lane.partial for lane in lanes if lane.partial]})
        rows = [lane.row for lane in lanes if lane.row is not None]
        aggregate = seed_aggregate(rows, spread_metric, threshold)
        missing = {m: math.nan for m in objectives if m not in aggregate}
        tune.report({**aggregate, **missing, "step": max(r.get("steps", 0) for r in rows), "final": True,
                     "rows": rows, "history": _drain(lanes)})
    finally:
        for lane in lanes:
            lane.stream.close()  # type: ignore[attr-defined]  # stops a seed still training (trial stopped)


def distributed_trial(config: dict[str, Any], objectives: tuple[str, ...], seeds: int, workers: Any, storage: str,
                      spread_metric: str, threshold: tuple[str, str, float] | None) -> None:
    """Each seed in turn through Ray Train's TorchTrainer, this trial process being only its driver.

    The trial holds no CPU (see tuner.trial_resources): the worker group reserves its own placement group.
    Rank 0's history comes back with the row, so the trial reports once, at the end of its last seed.
    """
    from genbench.train.ray_worker import run_distributed

    base, trial_id = int(config.get("seed", 0)), tune.get_context().get_trial_id()
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for seed in range(base, base + seeds):
        row, steps = run_distributed({**config, "seed": seed}, workers, f"{storage.rstrip('/')}/{trial_id}-s{seed}")
        rows.append({**row, "seed": seed, "steps": row.get("steps", 0)})  # train_path, workers: set by rank 0
        history.extend({"seed": seed, **h} for h in steps)
    aggregate = seed_aggregate(rows, spread_metric, threshold)
    missing = {m: math.nan for m in objectives if m not in aggregate}
    tune.report({**aggregate, **missing, "step": max(r["steps"] for r in rows), "final": True, "rows": rows,
                 "history": history})


def _drain(lanes: list[Lane]) -> list[dict[str, Any]]:
    out = [h for lane in lanes for h in lane.history]
    for lane in lanes:
        lane.history.clear()
    return out
