"""One run from a flat config to a trial row: build, train, evaluate, measure cost. Never raises for divergence."""
from __future__ import annotations

import time
import traceback
from typing import Any

import torch

from genbench.config import RunConfig, from_flat
from genbench.data import load_dataset
from genbench.errors import GenbenchError
from genbench.families import FAMILIES
from genbench.families.base import count_params
from genbench.metrics.stability import best_to_final_gap, oscillation
from genbench.results.samples import encode as encode_samples
from genbench.train.device import Placement, apply_backends, place, resolve
from genbench.train.evaluate import Evaluator, likelihood, peak_memory_bytes, sample_cost
from genbench.train.loop import LoopOutcome, Report, train


def _no_report(step: int, values: dict[str, float]) -> None:
    return None


def run(flat: dict[str, Any], report: Report = _no_report, where: dict[str, str] | None = None) -> dict[str, Any]:
    """Train the run `flat` describes and return its row: status, quality.*, likelihood.*, stability.*, cost.*.

    Bad configuration or data raise GenbenchError before anything trains; divergence and errors inside
    training become the row's status ('diverged', 'failed') so that a sweep goes on.
    """
    cfg = from_flat(flat, where)
    placement = resolve(cfg.train)  # a device that is not here fails now, before anything loads or trains
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    if placement.cuda:  # cost.peak_mem_bytes of this run, not of an earlier trial of a reused process
        torch.cuda.reset_peak_memory_stats(placement.device)
    started, wall0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    try:
        row = _train_and_measure(cfg, report, placement)
    except GenbenchError:  # the user's input (a data file, a setting that does not fit the data): not an outcome
        raise
    except Exception as exc:  # a crash inside training is an outcome to record, not the end of the sweep
        row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=8)}
    wall_s = time.perf_counter() - wall0
    row.update({"train_path": "in-process", "workers": 1, "cost.wall_s": wall_s,
                "cost.device_s": device_seconds(placement, wall_s, time.process_time() - cpu0),
                "cost.peak_mem_bytes": peak_memory_bytes(placement.device), **placement.columns(), "start_time": started,
                "end_time": time.time()})
    return row


def device_seconds(placement: Placement, wall_s: float, cpu_s: float, workers: int = 1) -> float:
    """cost.device_s: GPU-seconds (each worker holds its GPU for the whole run), or CPU core-seconds without one."""
    return wall_s * workers if placement.cuda else cpu_s


def _train_and_measure(cfg: RunConfig, report: Report, placement: Placement) -> dict[str, Any]:
    data = load_dataset(cfg.data)
    apply_backends(placement)
    family = place(FAMILIES.get(cfg.family).build(cfg, data), placement)
    evaluator = Evaluator(data, cfg.eval.n_samples, cfg.eval.features, cfg.eval.inception_weights)
    curve: list[dict[str, float]] = []

    def evaluate(f: Any) -> dict[str, float]:
        curve.append(evaluator(f))
        return curve[-1]

    outcome = train(family, data, cfg, report, evaluate, placement=placement)
    return measure(family, data, cfg, outcome, evaluator, curve)


def measure(family: Any, data: Any, cfg: RunConfig, outcome: LoopOutcome, evaluator: Evaluator,
            curve: list[dict[str, float]]) -> dict[str, Any]:
    """The row of a trained family: final quality, likelihood, stability of its evaluation curve, cost."""
    final = curve[-1] if curve and outcome.status != "diverged" else evaluator(family)  # the loop scored its last step
    row: dict[str, Any] = {"status": outcome.status, "error": outcome.reason, "steps": outcome.steps}
    row.update({f"quality.{k}": v for k, v in final.items()})
    row.update(evaluator.provenance())
    row.update(likelihood(family, data))
    row.update(_stability(outcome, [c.get(evaluator.primary[0], float("nan")) for c in curve], evaluator.primary[1]))
    row.update({"cost.params": count_params(family), "cost.train_flops": outcome.step_flops * outcome.steps,
                **sample_cost(family, cfg.eval.n_samples)})
    if evaluator.last_samples is not None:
        row["samples"] = encode_samples(evaluator.last_samples, data.is_image)  # samples/<trial_id>.png or .npy
    return row


def _stability(outcome: LoopOutcome, curve: list[float], better: str) -> dict[str, Any]:
    return {"stability.diverged": outcome.status == "diverged",
            "stability.steps_to_diverge": outcome.steps_to_diverge if outcome.steps_to_diverge else -1,
            "stability.grad_norm_max": outcome.grad_norm_max,
            "stability.oscillation": oscillation(curve) if curve else float("nan"),
            "stability.best_to_final_gap": best_to_final_gap(curve, better) if curve else float("nan")}
