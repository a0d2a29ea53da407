"""The function each Ray Tune trial runs: one configuration under each of its seeds, reported in eval-sized chunks."""

from __future__ import annotations

import functools
import math
import os
import queue
import sys
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from ray import tune
from ray.train import UserCallback

from genbench.errors import GenbenchError
from genbench.results.analysis import seed_aggregate
from genbench.train.device import Assignment
from genbench.train.plan import reached_end
from genbench.train.run import run
from genbench.train.shared import shared_data

Item = tuple[Any, ...]  # ("report", step, values), ("partial", row) ... then ("row", row), ("error", message) or
# ("input-error", message): the run could not start with its settings or data (it would fail the same way again)
_warned_cuda: list[bool] = []


class InputError(GenbenchError):
    """A seed's settings or data are wrong (bad data file, a setting that does not fit the data): deterministic."""


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
    held = bool(ray.get_gpu_ids())
    if not held:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    if not held:
        return Assignment(torch.device("cpu"), 0.0, visible)
    if torch.cuda.is_available():
        return Assignment(torch.device("cuda", 0), gpu_share, visible)  # Ray's GPU is this process's first one
    if not _warned_cuda:  # e.g. a CPU build of torch on a GPU node: the share is held, the run trains on the CPU
        _warned_cuda.append(True)
        print(
            f"genbench: warning: Ray gave this trial GPU {visible} but torch {torch.__version__} sees no CUDA "
            "device; it trains on the CPU",
            file=sys.stderr,
            flush=True,
        )
    return Assignment(torch.device("cpu"), gpu_share, visible)


def run_stream(flat: dict[str, Any], gpu_share: float = 0.0, data: list[Any] | None = None) -> Iterator[Item]:
    """run(flat) as a stream: its reports and snapshots as they happen, then its row. Closing the stream stops
    the run. The run trains in a thread so that the consumer can aggregate seeds and report to Tune meanwhile.
    `data`: [ObjectRef] of the data set the sweep's driver loaded once (shared_data), else the run loads its own.
    """
    items: queue.Queue[Item] = queue.Queue()
    stop = threading.Event()
    assignment = ray_assignment(gpu_share)
    dataset = shared_data(data)

    def report(step: int, values: dict[str, float]) -> None:
        if stop.is_set():
            raise Cancelled
        items.put(("report", step, values))

    def work() -> None:
        try:
            row = run(flat, report, assignment=assignment, snapshot=lambda r: items.put(("partial", r)), data=dataset)
            items.put(("row", {**row, "worker_nodes": _node_id()}))
        except Cancelled:
            pass
        except Exception as exc:  # a GenbenchError (bad data or settings): the trial fails once, with its message
            items.put(("input-error", f"{type(exc).__name__}: {exc}"))

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


def _remote_stream(flat: dict[str, Any], training: Training) -> Iterator[Item]:
    """The same stream from a Ray task in one of the trial's placement-group bundles (a seed on its own CPUs and
    GPU share)."""
    import ray

    task = _seed_task().options(num_cpus=training.cpus, num_gpus=training.gpus)
    refs = task.remote(flat, training.gpus, training.data)
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
            if item[0] == "input-error":
                raise InputError(item[1])
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


@dataclass(frozen=True)
class Training:
    """How each seed of a trial trains: in the trial's process (one seed) or as Ray tasks with `cpus` CPUs and a
    `gpus` share each, or data-parallel through Ray Train (`workers`, with its checkpoints under `storage`); on the
    data set the driver loaded once (`data`: [ObjectRef]), or on its own."""

    seeds: int = 1
    cpus: int = 1
    gpus: float = 0.0
    workers: Any = None  # a train.ray_worker.Workers, or None
    storage: str = ""
    data: list[Any] | None = None


def trial_main(
    config: dict[str, Any],
    objectives: tuple[str, ...] = (),
    spread_metric: str = "",
    threshold: tuple[str, str, float] | None = None,
    training: Training = Training(),
) -> None:
    """Train `config` under `training.seeds` seeds in lockstep; every evaluation reports the seeds' mean quality.*.

    Every intermediate report carries each seed's row as of that evaluation (`partial_rows`: cost, provenance and
    stability so far), which is what a stopped trial's rows hold. The final report carries `final: True`, the seed
    aggregate (mean metrics, seed_std, seed_cv, success_rate), every objective (NaN where none was measured, so
    that Optuna records a failure) and the per-seed rows. An intermediate report carries every objective too, NaN
    where it is known only at the end (cost, stability, likelihood): the report is what tells the sweep how far the
    trial is (its step), whatever the objectives. A seed whose settings or data are wrong ends the trial at once as
    `failed`, with the message, and it is not retried: a second try would fail the same way.
    """
    base = int(config.get("seed", 0))
    flats = [{**config, "seed": base + i} for i in range(training.seeds)]
    lanes = [Lane(f["seed"], _stream(f, training)) for f in flats]
    try:
        while any(lane.row is None for lane in lanes):
            for lane in lanes:
                if lane.row is None:
                    lane.advance()
            latest = [lane.history[-1] for lane in lanes if lane.history]
            step = max((h["step"] for h in latest), default=0)
            # The last evaluation goes out with the final report: a scheduler stops a trial at max_t, before it.
            if any(lane.row is None for lane in lanes) and not any(reached_end(config, h["step"], h) for h in latest):
                tune.report(
                    {
                        "step": step,
                        **_budget_used(latest),
                        **dict.fromkeys(objectives, math.nan),
                        **_mean_latest(lanes),
                        "history": _drain(lanes),
                        "partial_rows": [lane.partial for lane in lanes if lane.partial],
                    }
                )
        rows = [lane.row for lane in lanes if lane.row is not None]
    except InputError as exc:
        rows = [{"seed": lane.seed, "status": "failed", "error": str(exc)} for lane in lanes]
    finally:
        for lane in lanes:
            lane.stream.close()  # type: ignore[attr-defined]  # stops a seed still training (trial stopped)
    _final_report(rows, lanes, objectives, spread_metric, threshold)


def _budget_used(latest: list[dict[str, Any]]) -> dict[str, float]:
    """The compute the seeds have spent, the least of them (train.device_s or train.flops): the time attribute of a
    scheduler under a compute budget, as `step` is under a steps budget."""
    keys = {k for h in latest for k in ("train.device_s", "train.flops") if k in h}
    return {k: min(float(h.get(k, math.inf)) for h in latest) for k in keys}


def _final_report(
    rows: list[dict[str, Any]],
    lanes: list[Lane],
    objectives: tuple[str, ...],
    spread_metric: str,
    threshold: tuple[str, str, float] | None,
) -> None:
    aggregate = seed_aggregate(rows, spread_metric, threshold)
    missing = {m: math.nan for m in objectives if m not in aggregate}
    tune.report(
        {
            **aggregate,
            **missing,
            "step": max(r.get("steps", 0) for r in rows),
            "final": True,
            "rows": rows,
            "history": _drain(lanes),
        }
    )


def _stream(flat: dict[str, Any], training: Training) -> Iterator[Item]:
    """One seed's stream: through Ray Train (data-parallel), in this process (one seed) or as a Ray task."""
    if training.workers is not None:
        trial_id = tune.get_context().get_trial_id()
        return train_stream(flat, training, f"{training.storage.rstrip('/')}/{trial_id}-s{flat['seed']}")
    return run_stream(flat, training.gpus, training.data) if training.seeds == 1 else _remote_stream(flat, training)


class ForwardReports(UserCallback):
    """Rank 0's evaluation reports, put on a Ray queue as the Train controller receives them (it runs there).

    Modelled on Ray's TuneReportCallback, which hands one Train run's reports to the Tune session itself: a trial
    here drives one Train run per seed and reports their mean in lockstep, so each run gets a queue of its own.
    The first report also introduces the controller, so that the trial can abort the run (AbortsTrainingOnStop).
    """

    def __init__(self, reports: Any) -> None:
        self.reports = reports  # a ray.util.queue.Queue (an actor handle: it travels to the controller)
        self.introduced = False

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        import ray

        if not self.introduced:
            self.introduced = True
            self.reports.put(("controller", ray.get_runtime_context().current_actor))
        if metrics and "history" in metrics[0]:  # an evaluation (checkpoint-only reports carry no history)
            self.reports.put(("train", metrics[0]))


TRAINING: set[Any] = set()  # controllers of this process's Ray Train runs still training
ABORT_S = 30.0  # the longest an abort waits for a controller to stop its workers


def abort_training(controllers: list[Any]) -> None:
    """Abort Ray Train runs: each controller stops its workers and removes their placement group, then exits."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError

    for ref in [c.abort.remote() for c in controllers]:
        try:
            ray.get(ref, timeout=ABORT_S)
        except (RayError, GetTimeoutError):  # abort ends the controller: its caller sees the actor die
            pass
    TRAINING.difference_update(controllers)


class AbortsTrainingOnStop:
    """Mixin of each trial's Trainable (Tune builds it from trial_main, whose __mixins__ name it).

    Tune calls a trial's cleanup() in the trial's process when it stops the trial (ASHA, a stopper), and ends the
    process only once it returns. Its Train runs are aborted first: ending the process would kill their controllers
    with it (it owns them) but leave their placement groups to Ray Train's PlacementGroupCleaner, which finds its
    cluster through the state API and fails where a machine runs several Ray instances ('Found multiple active Ray
    instances'): a group left behind holds its CPUs, and the next trial's worker group waits for them for ever.
    """

    def cleanup(self) -> None:
        abort_training(list(TRAINING))
        super().cleanup()  # type: ignore[misc]


def _start_training(flat: dict[str, Any], training: Training, storage: str) -> Any:
    """run_distributed(flat) in a thread of this process (the run's driver); returns the queue its reports, then its
    end ('end', row, history) or ('error', message), arrive on."""
    from ray.exceptions import RayError
    from ray.util.queue import Queue

    from genbench.train.ray_worker import run_distributed

    reports = Queue(actor_options={"num_cpus": 0})  # unbounded: a seed ahead of the others never blocks its run

    def work() -> None:
        end: tuple[Any, ...]
        try:
            end = ("end", *run_distributed(flat, training.workers, storage, [ForwardReports(reports)], training.data))
        except Exception as exc:  # a GenbenchError (no result checkpoint), Ray failing to start the run, an abort
            end = ("error", f"{type(exc).__name__}: {exc}")
        try:
            reports.put(end)
        except RayError:  # the trial has ended, and its queue with it
            pass

    threading.Thread(target=work, name=f"train-seed-{flat.get('seed', 0)}", daemon=True).start()
    return reports


def train_stream(flat: dict[str, Any], training: Training, storage: str) -> Iterator[Item]:
    """run_distributed(flat) as a stream: rank 0's evaluations as Ray Train reports them, then the rest of its history
    and its row. The seeds' runs train side by side where the cluster holds their worker groups (a later one waits
    for resources). Closing the stream, or Tune stopping the trial, aborts the run (AbortsTrainingOnStop).
    """
    reports = _start_training(flat, training, storage)
    controller, ended = None, False
    seen = 0  # the last step passed on: a worker group restarted from a checkpoint reports later steps again
    try:
        while not ended:
            item = reports.get()
            if item[0] in ("end", "error"):
                ended = True
                TRAINING.discard(controller)  # a handle held keeps its actor alive
            if item[0] == "controller":
                controller = item[1]
                TRAINING.add(controller)
            elif item[0] == "error":
                yield item
            else:
                seen = yield from train_items(item, seen)
    finally:
        if controller is not None and not ended:
            abort_training([controller])


def train_items(item: tuple[Any, ...], seen: int) -> Generator[Item, None, int]:
    """A Train report ('train', metrics) or the run's end ('end', row, history) as stream items after step `seen`;
    returns the last step passed on."""
    if item[0] == "train" and item[1]["step"] > seen:
        yield "partial", item[1]["row"]
    for entry in item[1]["history"] if item[0] == "train" else item[2]:
        if entry["step"] > seen:
            seen = entry["step"]
            yield "report", seen, {k: v for k, v in entry.items() if k != "step"}
    if item[0] == "end":
        yield "row", item[1]
    return seen


def _drain(lanes: list[Lane]) -> list[dict[str, Any]]:
    out = [h for lane in lanes for h in lane.history]
    for lane in lanes:
        lane.history.clear()
    return out


trial_main.__mixins__ = (AbortsTrainingOnStop,)  # type: ignore[attr-defined]  # kept by tune.with_parameters
