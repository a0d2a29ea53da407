"""The training loop: pure torch, reports through a callback, turns divergence into an outcome (no Ray import)."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.base import Family, params_finite
from genbench.train.flops import FlopCount

Report = Callable[[int, dict[str, float]], None]  # report(step, {"train.loss_d": ..., "eval.modes": ...})
Evaluate = Callable[[Family], dict[str, float]]  # evaluate(family) -> {"modes": ...}


@dataclass
class LoopOutcome:
    """How a training run ended."""

    status: str  # completed | diverged | early_stopped (mode collapse)
    steps: int  # optimisation steps taken
    steps_to_diverge: int | None = None  # first step whose scalars were non-finite or exploded
    reason: str = ""
    grad_norm_max: float = 0.0
    step_flops: float = 0.0  # FLOPs of one training step, counted on the first step


@dataclass
class Window:
    """Scalars of the steps since the last report, reduced with one host sync."""

    means: dict[str, float]
    bad_offset: int | None  # index in the window of the first divergent step
    reason: str
    grad_norm_max: float


def close_window(scalars: list[dict[str, torch.Tensor]], diverge_loss: float, params_ok: torch.Tensor) -> Window:
    keys = list(scalars[0])
    values = torch.stack([torch.stack([s[k].float() for s in scalars]) for k in keys])  # (K, W)
    finite = torch.isfinite(values).all(dim=0)  # (W,)
    loss_rows = [i for i, k in enumerate(keys) if ".loss" in k]
    exploded = (values[loss_rows].abs() > diverge_loss).any(dim=0) if loss_rows else torch.zeros_like(finite)
    grad_rows = [i for i, k in enumerate(keys) if "grad_norm" in k]
    grad_max = values[grad_rows].nan_to_num(nan=0.0, posinf=math.inf).amax() if grad_rows else values.new_zeros(())
    host = torch.cat([values.mean(dim=1), (~finite).float(), exploded.float(), grad_max.view(1),
                      params_ok.float().view(1)]).tolist()  # the one sync per window
    n_keys, width = len(keys), values.shape[1]
    means, nonfinite, explode = host[:n_keys], host[n_keys:n_keys + width], host[n_keys + width:n_keys + 2 * width]
    bad, reason = None, ""
    for i in range(width):
        if nonfinite[i] or explode[i]:
            bad, reason = i, "non-finite loss or gradient" if nonfinite[i] else f"|loss| > {diverge_loss:g}"
            break
    if bad is None and not host[-1]:
        bad, reason = width - 1, "non-finite parameters"
    return Window(dict(zip(keys, means)), bad, reason, host[-2])


def train(family: Family, data: Dataset, cfg: RunConfig, report: Report, evaluate: Evaluate) -> LoopOutcome:
    """Run cfg.train.steps steps; report window means every log_every steps and eval.* every eval.every steps."""
    steps, log_every = cfg.train.steps, cfg.train.log_every
    batch_rows = cfg.train.batch_size * family.batches_per_step
    generator = torch.Generator().manual_seed(cfg.seed)  # batch order: reproducible per seed
    window: list[dict[str, torch.Tensor]] = []
    grad_norm_max = 0.0
    collapsed_evals = 0  # consecutive evaluations whose high-quality samples all fell in one mode
    idx = torch.randint(len(data.train), (batch_rows,), generator=generator)
    with FlopCount() as counter:  # the first step, counted once (matmuls and convolutions)
        window.append(family.train_step(data.train[idx]))
    step_flops = float(counter.total)
    for step in range(1, steps + 1):
        if step > 1:
            idx = torch.randint(len(data.train), (batch_rows,), generator=generator)
            window.append(family.train_step(data.train[idx]))  # (batch_rows, D) or (batch_rows, C, H, W) in
        evaluate_now = step % cfg.eval.every == 0 or step == steps
        if step % log_every and not evaluate_now:
            continue
        closed = close_window(window, cfg.train.diverge_loss, params_finite(family))
        grad_norm_max = max(grad_norm_max, closed.grad_norm_max)
        if closed.bad_offset is not None:
            report(step, closed.means)
            at = step - len(window) + 1 + closed.bad_offset
            return LoopOutcome("diverged", step, at, closed.reason, grad_norm_max, step_flops)
        window = []
        values = dict(closed.means)
        if evaluate_now:
            values.update({f"eval.{k}": v for k, v in evaluate(family).items()})
            collapsed_evals = collapsed_evals + 1 if values.get("eval.modes") == 1 else 0  # all hq samples in one mode
        report(step, values)
        if cfg.train.collapse_evals and collapsed_evals >= cfg.train.collapse_evals and step < steps:
            reason = f"mode collapse: one mode covered in {collapsed_evals} evaluations in a row"
            return LoopOutcome("early_stopped", step, None, reason, grad_norm_max, step_flops)
    return LoopOutcome("completed", steps, grad_norm_max=grad_norm_max, step_flops=step_flops)
