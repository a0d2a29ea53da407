"""The training loop: pure torch, reports through a callback, turns divergence into an outcome (no Ray import)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.base import Family, params_finite
from genbench.train.device import Placement, batch_to, compile_networks, train_split_on
from genbench.train.flops import FlopCount
from genbench.train.plan import DeviceClock, Plan

Report = Callable[[int, dict[str, float]], None]  # report(step, {"train.loss_d": ..., "eval.modes": ...})
Evaluate = Callable[[Family], dict[str, float]]  # evaluate(family) -> {"modes": ...}; see _evaluate
Reduce = Callable[[torch.Tensor], torch.Tensor]  # mean over data-parallel workers (identity in one process)


@dataclass
class LoopState:
    """Where a run is: what a checkpoint holds besides the family's modules and optimisers."""

    step: int = 0  # steps taken
    batch_rng: torch.Tensor | None = None  # state of the batch-order generator
    grad_norm_max: float = 0.0
    step_flops: float = 0.0
    collapsed_evals: int = 0  # consecutive evaluations whose high-quality samples all fell in one mode
    device_s: float = 0.0  # device-seconds spent in training steps (every worker's; evaluations not counted)
    evals: int = 0  # evaluations made
    resumed_from: list[int] = field(default_factory=list)  # checkpoint steps a restarted run continued from


Checkpoint = Callable[[LoopState], None]


@dataclass
class LoopOutcome:
    """How a training run ended."""

    status: str  # completed | diverged | early_stopped (mode collapse)
    steps: int  # optimisation steps taken
    steps_to_diverge: int | None = None  # first step with non-finite or exploded scalars, or non-finite samples
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


def _identity(values: torch.Tensor) -> torch.Tensor:
    return values


def close_window(
    scalars: list[dict[str, torch.Tensor]], diverge_loss: float, params_ok: torch.Tensor, reduce: Reduce = _identity
) -> Window:
    """Window means and the first divergent step, with one host sync; `reduce` makes workers agree on both."""
    keys = list(scalars[0])
    values = reduce(torch.stack([torch.stack([s[k].float() for s in scalars]) for k in keys]))  # (K, W)
    finite = torch.isfinite(values).all(dim=0)  # (W,)
    loss_rows = [i for i, k in enumerate(keys) if ".loss" in k]
    exploded = (values[loss_rows].abs() > diverge_loss).any(dim=0) if loss_rows else torch.zeros_like(finite)
    grad_rows = [i for i, k in enumerate(keys) if "grad_norm" in k]
    grad_max = values[grad_rows].nan_to_num(nan=0.0, posinf=math.inf).amax() if grad_rows else values.new_zeros(())
    host = torch.cat(
        [values.mean(dim=1), (~finite).float(), exploded.float(), grad_max.view(1), params_ok.float().view(1)]
    ).tolist()  # the one sync per window
    n_keys, width = len(keys), values.shape[1]
    means, nonfinite, explode = host[:n_keys], host[n_keys : n_keys + width], host[n_keys + width : n_keys + 2 * width]
    bad, reason = None, ""
    for i in range(width):
        if nonfinite[i] or explode[i]:
            bad, reason = i, "non-finite loss or gradient" if nonfinite[i] else f"|loss| > {diverge_loss:g}"
            break
    if bad is None and not host[-1]:
        bad, reason = width - 1, "non-finite parameters"
    return Window(dict(zip(keys, means)), bad, reason, host[-2])


def _evaluate(family: Family, evaluate: Evaluate, values: dict[str, float], state: LoopState) -> str:
    """Add an evaluation's eval.* to `values`; returns why the run diverged there, '' if it did not.

    Samples holding a NaN or inf mean a diverged model even where the weights and the window's losses were
    finite (outputs that overflow): the evaluation's Scores (evaluate.py) count them beside the metrics.
    """
    scores = evaluate(family)
    values.update({f"eval.{k}": v for k, v in scores.items()})
    state.collapsed_evals = state.collapsed_evals + 1 if values.get("eval.modes") == 1 else 0
    bad = int(getattr(scores, "nonfinite", 0))
    return f"non-finite samples ({bad} of {getattr(scores, 'n', '?')})" if bad else ""


def _first_step(family: Family, batch: torch.Tensor, state: LoopState, compile_after: bool) -> dict[str, torch.Tensor]:
    """The first step of a run, its FLOPs counted once (matmuls and convolutions); a resumed run only steps.

    The networks are compiled after it, where asked: dynamo skips for good a frame it first meets under
    FlopCount's dispatch mode, so compiling before the counted step would leave them eager.
    """
    if state.step_flops:
        scalars = family.train_step(batch)
    else:
        with FlopCount() as counter:
            scalars = family.train_step(batch)
        state.step_flops = float(counter.total)
    if compile_after:
        compile_networks(family)
    return scalars


def train(
    family: Family,
    data: Dataset,
    cfg: RunConfig,
    report: Report,
    evaluate: Evaluate,
    *,
    reduce: Reduce = _identity,
    state: LoopState | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: int = 0,
    placement: Placement | None = None,
    world: int = 1,
) -> LoopOutcome:
    """Train until the run's budget is spent (genbench.train.plan: train.steps steps, or train.device_s / train.flops);
    report window means every log_every steps and eval.* at every evaluation.

    A resumed run passes the LoopState of its checkpoint and continues with the next step and the same batch
    order. `checkpoint(state)` is called at the first window end at least `checkpoint_every` steps after the last.
    Batches go to `placement`'s device (the family is already there); the batch order is drawn on the CPU, so it
    is the same on every device. `world` data-parallel workers spend the budget together: `reduce` makes them agree
    on the device-seconds, so that every worker stops at the same step.
    """
    placement = placement or Placement(torch.device("cpu"))
    data = train_split_on(data, placement)
    plan = Plan.of(cfg, family.horizon, world)
    batch_rows = cfg.train.batch_size * family.batches_per_step
    state = state or LoopState()
    if state.step_flops:
        plan.first_step(state.step_flops)
    generator = torch.Generator().manual_seed(cfg.seed)  # batch order: reproducible per seed
    if state.batch_rng is not None:
        generator.set_state(state.batch_rng)
    window: list[dict[str, torch.Tensor]] = []
    saved_at = first = state.step
    clock = DeviceClock(placement.cuda)
    step = state.step
    while not plan.done(step, state.device_s):
        step += 1
        idx = torch.randint(len(data.train), (batch_rows,), generator=generator)
        batch = batch_to(data.train[idx.to(data.train.device, non_blocking=True)], placement)  # (rows, D | C, H, W)
        if step == first + 1:
            window.append(_first_step(family, batch, state, placement.compile))
            plan.first_step(state.step_flops)
        else:
            window.append(family.train_step(batch))
        if not plan.closes_window(step):
            continue
        closed = close_window(window, cfg.train.diverge_loss, params_finite(family), reduce)
        state.device_s = plan.spend(state.device_s, _lap_s(clock, reduce, placement, world), step)
        state.grad_norm_max = max(state.grad_norm_max, closed.grad_norm_max)
        values = {**closed.means, **plan.spent(step, state.device_s, state.step_flops)}
        if closed.bad_offset is not None:
            report(step, values)
            at = step - len(window) + 1 + closed.bad_offset
            return LoopOutcome("diverged", step, at, closed.reason, state.grad_norm_max, state.step_flops)
        window = []
        last = plan.done(step, state.device_s)
        diverged = ""
        if plan.evaluates(step, state.device_s, state.evals):
            diverged = _evaluate(family, evaluate, values, state)
            state.evals = plan.evals_made(step, state.device_s, state.evals)
        report(step, values)
        if diverged:
            return LoopOutcome("diverged", step, step, diverged, state.grad_norm_max, state.step_flops)
        state.step, state.batch_rng = step, generator.get_state()
        if cfg.train.collapse_evals and state.collapsed_evals >= cfg.train.collapse_evals and not last:
            reason = f"mode collapse: one mode covered in {state.collapsed_evals} evaluations in a row"
            return LoopOutcome("early_stopped", step, None, reason, state.grad_norm_max, state.step_flops)
        if checkpoint is not None and checkpoint_every and step - saved_at >= checkpoint_every and not last:
            checkpoint(state)
            saved_at = step
        clock.restart()  # evaluation, reports and checkpoints are not training
    return LoopOutcome("completed", step, grad_norm_max=state.grad_norm_max, step_flops=state.step_flops)


def _lap_s(clock: DeviceClock, reduce: Reduce, placement: Placement, world: int) -> float:
    """The window's device-seconds summed over the workers (their mean x world: every worker gets the same sum)."""
    lap_s = clock.lap_s()
    if world == 1:
        return lap_s
    return float(reduce(torch.tensor([lap_s], device=placement.device)).item()) * world
