"""One run from a flat config to a trial row: build, train, evaluate, measure cost. Never raises for divergence."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from genbench.config import RunConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import GenbenchError
from genbench.families import FAMILIES
from genbench.families.base import count_params
from genbench.metrics.stability import best_to_final_gap, oscillation
from genbench.results.samples import encode as encode_samples
from genbench.train import model as kept_model
from genbench.train.device import Assignment, Placement, apply_backends, place, resolve
from genbench.train.evaluate import Evaluator, likelihood, peak_memory_bytes, reset_peak_memory, sample_cost
from genbench.train.loop import LoopOutcome, LoopState, Report, train


def _no_report(step: int, values: dict[str, float]) -> None:
    return None


Snapshot = Callable[[dict[str, Any]], None]  # snapshot(row so far): at each evaluation, before its report


@dataclass
class Meter:
    """The clocks, device and GPU share of one run: its cost.* columns at any moment of it.

    A data-parallel run is metered on rank 0 for all its `world` workers: CPU time x world, and the assignment
    holds the whole group's GPUs and every rank's visible ids."""

    placement: Placement
    assignment: Assignment
    world: int = 1
    started: float = field(default_factory=time.time)
    wall0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)

    def __post_init__(self) -> None:
        reset_peak_memory(self.placement.device)  # cost.peak_mem_bytes of this run, not of an earlier trial

    def columns(self) -> dict[str, Any]:
        wall_s = time.perf_counter() - self.wall0
        device_s = device_seconds(
            self.placement,
            wall_s,
            (time.process_time() - self.cpu0) * self.world,
            self.assignment.gpus_held(self.placement),
        )
        return {
            "cost.wall_s": wall_s,
            "cost.device_s": device_s,
            "cost.peak_mem_bytes": peak_memory_bytes(self.placement.device),
            **self.placement.columns(),
            **self.assignment.columns(self.placement),
            "start_time": self.started,
        }


def run(
    flat: dict[str, Any],
    report: Report = _no_report,
    where: dict[str, str] | None = None,
    assignment: Assignment = Assignment(),
    snapshot: Snapshot | None = None,
    data: Dataset | None = None,
    keep_model: bool = False,
) -> dict[str, Any]:
    """Train the run `flat` describes and return its row: status, quality.*, likelihood.*, stability.*, cost.*.

    `assignment` is what Ray gave the process (device, GPU share); `snapshot` receives the row as it stands at
    every evaluation (cost, provenance and stability so far), which is the row of a trial stopped there; `data` is
    the run's data set when the sweep loaded it once for every trial (else the run loads cfg.data itself);
    `keep_model`: the row carries the final model (`model`, written to models/<trial_id>.pt) unless it diverged.
    Bad configuration or data raise GenbenchError before anything trains; divergence and errors inside
    training become the row's status ('diverged', 'failed') so that a sweep goes on.
    """
    cfg = from_flat(flat, where)
    placement = resolve(cfg.train, assignment.device)  # a device that is not here fails now, before anything loads
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    meter = Meter(placement, assignment)
    try:
        row = _train_and_measure(cfg, report, meter, snapshot, data, keep_model)
    except GenbenchError:  # the user's input (a data file, a setting that does not fit the data): not an outcome
        raise
    except Exception as exc:  # a crash inside training is an outcome to record, not the end of the sweep
        row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
    row.update({"train_path": "in-process", "workers": 1, **meter.columns(), "end_time": time.time()})
    return row


def device_seconds(placement: Placement, wall_s: float, cpu_s: float, gpus_held: float = 1.0) -> float:
    """cost.device_s: GPU-seconds (the GPUs held, a fraction for a shared GPU, for the whole run), or CPU
    core-seconds without a GPU."""
    return wall_s * gpus_held if placement.cuda else cpu_s


def _train_and_measure(
    cfg: RunConfig, report: Report, meter: Meter, snapshot: Snapshot | None, data: Dataset | None, keep_model: bool
) -> dict[str, Any]:
    data = data if data is not None else load_dataset(cfg.data)
    apply_backends(meter.placement)
    family = place(FAMILIES.get(cfg.family).build(cfg, data), meter.placement)
    evaluator = Evaluator(data, cfg.eval.n_samples, cfg.eval.features, cfg.eval.inception_weights, cfg.seed)
    curve: list[dict[str, float]] = []
    state = LoopState()  # the loop updates it in place: the snapshots read its gradient-norm maximum and FLOPs

    def evaluate(f: Any) -> dict[str, float]:
        curve.append(evaluator(f))
        return curve[-1]

    def report_with_snapshot(step: int, values: dict[str, float]) -> None:
        if snapshot is not None and any(k.startswith("eval.") for k in values):
            snapshot(running_row(family, evaluator, curve, state, meter, step))
        report(step, values)

    outcome = train(family, data, cfg, report_with_snapshot, evaluate, state=state, placement=meter.placement)
    return measure(family, data, cfg, outcome, evaluator, curve, keep_model)


def running_row(
    family: Any, evaluator: Evaluator, curve: list[dict[str, float]], state: LoopState, meter: Meter, step: int
) -> dict[str, Any]:
    """The row of a run that is still training, as of its latest evaluation: what a stopped trial's row holds."""
    series = [c.get(evaluator.primary[0], float("nan")) for c in curve]
    return {
        "steps": step,
        **meter.columns(),
        **evaluator.provenance(),
        "provenance.sampler": family.sampler,
        "cost.params": count_params(family),
        "cost.train_flops": state.step_flops * step * meter.world,
        **_stability(False, None, state.grad_norm_max, series, evaluator.primary[1]),
    }


def measure(
    family: Any,
    data: Any,
    cfg: RunConfig,
    outcome: LoopOutcome,
    evaluator: Evaluator,
    curve: list[dict[str, float]],
    keep_model: bool = False,
) -> dict[str, Any]:
    """The row of a trained family: final quality, likelihood, stability of its evaluation curve, cost; with
    `keep_model`, its final model too (a diverged one's weights or outputs are not finite: it keeps none)."""
    final = curve[-1] if curve and outcome.status != "diverged" else evaluator(family)  # the loop scored its last step
    row: dict[str, Any] = {"status": outcome.status, "error": outcome.reason, "steps": outcome.steps}
    if keep_model and outcome.status != "diverged":  # the weights `final` scored, before anything else runs them
        row["model"] = kept_model.encode(family, cfg)  # models/<trial_id>.pt
    row.update({f"quality.{k}": v for k, v in final.items()})
    row.update(evaluator.provenance())
    row.update(likelihood(family, data))
    series = [c.get(evaluator.primary[0], float("nan")) for c in curve]
    row.update(
        _stability(
            outcome.status == "diverged", outcome.steps_to_diverge, outcome.grad_norm_max, series, evaluator.primary[1]
        )
    )
    row.update(
        {
            "cost.params": count_params(family),
            "cost.train_flops": outcome.step_flops * outcome.steps,
            **sample_cost(family, cfg.eval.n_samples),
        }
    )
    if evaluator.last_samples is not None:
        row["samples"] = encode_samples(evaluator.last_samples, data.is_image)  # samples/<trial_id>.png or .npy
    return row


def _stability(
    diverged: bool, steps_to_diverge: int | None, grad_norm_max: float, curve: list[float], better: str
) -> dict[str, Any]:
    return {
        "stability.diverged": diverged,
        "stability.steps_to_diverge": steps_to_diverge or -1,
        "stability.grad_norm_max": grad_norm_max,
        "stability.oscillation": oscillation(curve) if curve else float("nan"),
        "stability.best_to_final_gap": best_to_final_gap(curve, better) if curve else float("nan"),
    }
