"""The Ray Train path: the same loop on every data-parallel worker (gloo on CPU), rank 0 evaluating and reporting."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from genbench.config import RunConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError, GenbenchError
from genbench.families import FAMILIES
from genbench.train import checkpoint
from genbench.train.device import Assignment, Placement, apply_backends, place, resolve
from genbench.train.evaluate import Evaluator
from genbench.train.loop import LoopState, Report, train
from genbench.train.parallel import from_rank0, make_data_parallel, mean_over_workers
from genbench.train.plan import budget_keys, progress_text, reached_end
from genbench.train.run import Meter, measure, running_row
from genbench.train.shared import shared_data


@dataclass
class Workers:
    """What a distributed run asks Ray for."""

    count: int = 2
    cpus: int = 1  # per worker; also its torch threads
    gpus: float = 0.0  # per worker
    placement: str = "PACK"  # PACK | SPREAD (one worker per node where the cluster allows)
    max_failures: int = 2  # worker-group restarts from the latest checkpoint before the run fails


def local_config(cfg: RunConfig, world: int) -> RunConfig:
    """Each worker's share of the batch; the global batch stays cfg.train.batch_size."""
    if cfg.train.batch_size % world:
        raise ConfigError(
            f"{cfg.train.batch_size} is not divisible by {world} workers",
            key="train.batch_size",
            fix=f"use a multiple of {world}",
        )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=cfg.train.batch_size // world))


def shard(data: Dataset, rank: int, world: int) -> Dataset:
    """Worker `rank`'s disjoint slice of the training split (the test split stays whole for rank 0's evaluation)."""
    part = copy.copy(data)
    part.train = data.train[rank::world]
    return part


def _restore(family: Any) -> tuple[LoopState | None, list[dict[str, Any]]]:
    import ray.train

    latest = ray.train.get_checkpoint()
    if latest is None:
        return None, []
    with latest.as_directory() as directory:
        return checkpoint.load(directory, family)


def _report(metrics: dict[str, Any], rank: int, write: Any = None) -> None:
    """Every worker reports (a Ray Train barrier); rank 0 attaches the checkpoint `write(dir)` produces."""
    import ray.train
    from ray.train import Checkpoint

    with tempfile.TemporaryDirectory() as directory:
        if rank == 0 and write is not None:
            write(directory)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(directory) if rank == 0 and write else None)


def _quiet_reports() -> None:
    """Ray Train logs every report at INFO under a logger named by its file path, outside LoggingConfig's reach."""
    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(logging.WARNING)


@dataclass
class WorkerRun:
    """One worker's share of a distributed run."""

    rank: int
    world: int
    cfg: RunConfig  # the run as given (global batch)
    local: RunConfig  # this worker's batch
    data: Dataset
    family: Any
    placement: Placement  # this worker's device (its own GPU, or the CPU) and options
    gpus: float = 0.0  # the GPUs Ray holds for this worker (resources_per_worker)


def _setup(config: dict[str, Any]) -> WorkerRun:
    """Same initial weights on every worker, then each its own noise; gradients averaged before every step."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    cfg = from_flat(config["flat"])
    placement = resolve(cfg.train, ray.train.torch.get_device())  # the GPU Ray gave this worker, or the CPU
    if placement.cuda:
        torch.cuda.set_device(placement.device)  # NCCL collectives of objects use the current device
    apply_backends(placement)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    data = shared_data(config.get("data")) or load_dataset(cfg.data)
    local = local_config(cfg, world)
    family = place(FAMILIES.get(cfg.family).build(local, data), placement)
    if world > 1:
        make_data_parallel(family)
    return WorkerRun(rank, world, cfg, local, data, family, placement, float(config.get("gpus_per_worker", 0.0)))


def _progress(run: WorkerRun, history: list[dict[str, Any]]) -> Any:
    def report(step: int, values: dict[str, float]) -> None:
        if run.rank:
            return
        history.append({"step": step, **values})
        evals = ", ".join(f"{k} {v:.4g}" for k, v in values.items() if k.startswith("eval."))
        if evals:  # rank 0's progress, shown by the driver (past Ray Train's print patch, which doubles lines)
            at = progress_text(budget_keys(run.cfg), step, values)
            sys.__stdout__.write(f"[train {run.cfg.family}] {at} {evals}\n")
            sys.__stdout__.flush()

    return report


def _reporter(run: WorkerRun, history: list[dict[str, Any]], snapshot: Callable[[int], dict[str, Any]]) -> Report:
    """The loop's report: rank 0 keeps the history, and at every evaluation but the last every worker reports to
    Ray Train (a barrier), rank 0 with the history since its previous report and its row so far (`snapshot`).

    These reports reach a Tune trial as they happen (sweep.trainable.ForwardReports); the last evaluation goes with
    the row, the run's result. After a restart rank 0 sends its restored history again: the trial keeps each step
    once.
    """
    progress = _progress(run, history)
    sent = 0

    def report(step: int, values: dict[str, float]) -> None:
        nonlocal sent
        progress(step, values)
        if reached_end(budget_keys(run.cfg), step, values) or not any(k.startswith("eval.") for k in values):
            return
        metrics: dict[str, Any] = {"step": step}
        if run.rank == 0:
            metrics.update(history=history[sent:], row=snapshot(step))
            sent = len(history)
        _report(metrics, run.rank)

    return report


def worker_main(config: dict[str, Any]) -> None:
    """One data-parallel worker: its shard, averaged gradients, rank 0's evaluation shared by all, a report at every
    evaluation, checkpoints."""
    _quiet_reports()
    run = _setup(config)
    rank, world, cfg = run.rank, run.world, run.cfg
    restored, history = _restore(run.family)
    state = restored or LoopState()  # updated in place by the loop: the snapshots read its gradient norm and FLOPs
    if restored is not None:  # a restarted worker group: the step it resumed from is part of the record
        state.resumed_from.append(state.step)
    torch.manual_seed(cfg.seed * 7919 + rank + 104729 * state.step)  # own noise per worker
    ev = cfg.eval
    evaluator = Evaluator(run.data, ev.n_samples, ev.features, ev.inception_weights) if rank == 0 else None
    curve = [
        {k[5:]: v for k, v in h.items() if k.startswith("eval.")}
        for h in history
        if any(k.startswith("eval.") for k in h)
    ]
    nodes, visible = _gathered(world, ray_node_id()), _gathered(world, os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    # The group holds world x gpus GPUs; cost.visible_devices lists each rank's ids (';' between ranks).
    meter = Meter(run.placement, Assignment(run.placement.device, run.gpus * world, ";".join(visible)), world)
    where = {
        "train_path": "ray-train",
        "workers": world,
        "worker_nodes": ",".join(nodes),
        "resumed_from": ",".join(map(str, state.resumed_from)),
    }

    def evaluate(f: Any) -> dict[str, float]:
        values = evaluator(f) if evaluator is not None else None
        curve.append(from_rank0(values) if world > 1 else values)
        return curve[-1]

    def snapshot(step: int) -> dict[str, Any]:
        return {**running_row(run.family, evaluator, curve, state, meter, step), **where}

    def save(loop: LoopState) -> None:
        _report({"step": loop.step}, rank, lambda d: checkpoint.save(d, run.family, loop, history))

    outcome = train(
        run.family,
        shard(run.data, rank, world),
        run.local,
        _reporter(run, history, snapshot),
        evaluate,
        reduce=mean_over_workers if world > 1 else (lambda v: v),
        state=state,
        checkpoint=save,
        checkpoint_every=cfg.train.checkpoint_every,
        placement=run.placement,
        world=world,
    )
    row = _final_row(run, outcome, evaluator, curve, meter, where) if rank == 0 else {}
    _report({"step": outcome.steps, "final": 1}, rank, lambda d: _write_result(d, row, history))


def ray_node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _gathered(world: int, mine: str) -> list[str]:
    """Every worker's value of `mine` (its Ray node, the GPU ids it sees), in rank order."""
    import torch.distributed as dist

    values = [mine] * world
    if world > 1:
        dist.all_gather_object(values, mine)
    return values


def _final_row(
    run: WorkerRun, outcome: Any, evaluator: Any, curve: list[dict[str, float]], meter: Meter, where: dict[str, Any]
) -> dict[str, Any]:
    """Rank 0's row: measured like an in-process run, plus how and where it trained (times since the last start)."""
    row = measure(run.family, run.data, run.cfg, outcome, evaluator, curve)
    row.update(
        {"cost.train_flops": row["cost.train_flops"] * run.world, **where, **meter.columns(), "end_time": time.time()}
    )
    return row


def _write_result(directory: str, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
    for name, value in (("row.json", row), ("history.json", history)):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(value, f)


def check_workers(cfg: RunConfig, workers: Workers) -> None:
    """What fails before any worker starts: a batch that does not divide, a GPU run given no GPUs."""
    local_config(cfg, workers.count)
    if cfg.train.device == "cuda" and not workers.gpus:
        raise ConfigError(
            "'cuda' but the Ray Train workers ask for no GPU",
            key="train.device",
            fix="pass --gpus-per-worker 1 (or resources.gpus_per_worker), or set train.device=auto",
        )


def run_distributed(
    flat: dict[str, Any],
    workers: Workers,
    storage: str,
    callbacks: list[Any] | None = None,
    data: list[Any] | None = None,
) -> tuple[dict[str, Any], list[dict]]:
    """Train `flat` with Ray Train's TorchTrainer on the connected Ray; returns rank 0's row and the history.

    A lost worker restarts the worker group from the latest checkpoint (FailureConfig); the history is kept
    in the checkpoints, so a resumed run continues it without a gap or a repeated step. `callbacks` (Ray Train
    UserCallbacks) see every report as the controller receives it: a sweep's trial forwards them to Tune. `data`:
    [ObjectRef] of the data set a sweep's driver loaded once; each worker reads the node's shared copy.
    """
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    cfg = from_flat(flat)
    check_workers(cfg, workers)
    flat = {**flat, "train.threads": workers.cpus}
    trainer = TorchTrainer(
        worker_main,
        train_loop_config={"flat": flat, "gpus_per_worker": workers.gpus, "data": data},
        scaling_config=ScalingConfig(
            num_workers=workers.count,
            use_gpu=workers.gpus > 0,
            resources_per_worker={"CPU": workers.cpus, **({"GPU": workers.gpus} if workers.gpus else {})},
            placement_strategy=workers.placement,
        ),
        run_config=RunConfig(
            name=f"train-{cfg.family}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=storage,
            failure_config=FailureConfig(max_failures=workers.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            logging_config=LoggingConfig(log_level="WARNING"),
            callbacks=callbacks,
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # TrainingFailedError: more failures than allowed; an outcome, not a crash
        message = str(exc).strip().splitlines()
        return {"status": "failed", "error": message[-1] if message else type(exc).__name__}, []
    if result.checkpoint is None:
        raise GenbenchError(f"{storage}: the distributed run ended without a result checkpoint")
    with result.checkpoint.as_directory() as directory:
        with open(os.path.join(directory, "row.json")) as f:
            row = json.load(f)
        with open(os.path.join(directory, "history.json")) as f:
            history = json.load(f)
    return row, history
