"""When a run evaluates and when it stops: after train.steps steps, or once it has spent its compute budget
(train.device_s device-seconds, train.flops FLOPs); the loop asks, the plan keeps the family's horizon current."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from genbench.config import RunConfig
from genbench.families.steps import Horizon

DEFAULT_EVALS = 10  # evaluations over a compute budget when eval.count is 0


class DeviceClock:
    """Device-seconds this process spends: wall seconds on a GPU (the loop reads it after a host sync, so queued
    kernels are counted), CPU core-seconds of the process on the CPU (every torch thread; a machine busy with other
    work does not shorten a run's budget, as wall time would)."""

    def __init__(self, cuda: bool) -> None:
        self.read = time.perf_counter if cuda else time.process_time
        self.mark = self.read()

    def lap_s(self) -> float:
        """Seconds since the last lap or restart."""
        now = self.read()
        lap, self.mark = now - self.mark, now
        return lap

    def restart(self) -> None:
        """Start the next lap now: what happened since the last lap (evaluation, reports) is not counted."""
        self.mark = self.read()


@dataclass
class Plan:
    """The budget of one run in its unit, and the cadence of its evaluations.

    unit 'steps': train.steps steps, an evaluation every eval.every steps (or eval.count spread evenly) and at the
    last. 'flops': train.flops FLOPs, turned into steps once the first step's FLOPs are counted. 'device_s': the
    run stops at the first window end after it has spent train.device_s device-seconds, and evaluates whenever it
    crosses the next of eval.count equal shares of them; the steps it is expected to take are re-estimated at every
    window from its rate so far, and the family's schedules read that horizon."""

    unit: str  # steps | flops | device_s
    budget: float  # in the unit
    last_step: int  # the most steps (train.steps: the cap under a compute budget)
    every: int  # steps between evaluations (steps and flops units)
    count: int  # evaluations over a compute budget
    log_every: int
    world: int  # data-parallel workers: device-seconds and FLOPs are summed over them
    horizon: Horizon

    @classmethod
    def of(cls, cfg: RunConfig, horizon: Horizon, world: int = 1) -> Plan:
        t, e = cfg.train, cfg.eval
        unit, budget = ("device_s", t.device_s) if t.device_s else ("flops", t.flops) if t.flops else ("steps", t.steps)
        count = e.count or (DEFAULT_EVALS if unit != "steps" else 0)
        every = max(1, t.steps // count) if count and unit == "steps" else e.every
        return cls(unit, float(budget), t.steps, every, count, t.log_every, world, horizon)

    def first_step(self, step_flops: float) -> None:
        """A FLOP budget becomes steps once one step's FLOPs are known (the first step counts them)."""
        if self.unit == "flops" and step_flops > 0:
            self.last_step = min(self.last_step, max(1, math.ceil(self.budget / (step_flops * self.world))))
            self.every = max(1, self.last_step // self.count)
            self.horizon.steps = self.last_step

    def closes_window(self, step: int) -> bool:
        """Whether the window ends at `step`: every log_every steps, at an evaluation and at the last step."""
        evaluation_step = self.unit != "device_s" and step % self.every == 0  # device_s evaluates at window ends
        return step % self.log_every == 0 or evaluation_step or step == self.last_step

    def spend(self, spent_s: float, lap_s: float, step: int) -> float:
        """Device-seconds spent after a window of lap_s (already summed over workers); updates the horizon."""
        spent_s += lap_s
        if self.unit == "device_s" and spent_s > 0:
            self.horizon.steps = min(self.last_step, max(step, round(step * self.budget / spent_s)))
        return spent_s

    def done(self, step: int, spent_s: float) -> bool:
        """Whether the run has spent its budget at `step`."""
        return step >= self.last_step or (self.unit == "device_s" and spent_s >= self.budget)

    def evaluates(self, step: int, spent_s: float, evals: int) -> bool:
        """Whether to evaluate at `step` (`evals` evaluations made so far): on the cadence, and at the end."""
        if self.done(step, spent_s):
            return True
        if self.unit == "device_s":
            return spent_s >= (evals + 1) * self.budget / self.count
        return step % self.every == 0

    def evals_made(self, step: int, spent_s: float, evals: int) -> int:
        """Evaluations counted after one at `step`: under device-seconds, the shares of the budget crossed (a window
        that crossed two makes one evaluation, and the next comes at the next share)."""
        if self.unit == "device_s":
            return max(evals + 1, math.floor(spent_s * self.count / self.budget))
        return evals + 1

    def spent(self, step: int, spent_s: float, step_flops: float) -> dict[str, float]:
        """The budget used so far, as the report's train.<unit> (nothing under a steps budget: the step is it)."""
        if self.unit == "device_s":
            return {"train.device_s": spent_s}
        return {"train.flops": step_flops * step * self.world} if self.unit == "flops" else {}


def budget_keys(cfg: RunConfig) -> dict[str, float]:
    """The flat keys reached_end reads, from a resolved config."""
    return {"train.steps": cfg.train.steps, "train.device_s": cfg.train.device_s, "train.flops": cfg.train.flops}


def progress_text(flat: dict[str, Any], step: int, values: dict[str, Any]) -> str:
    """'step 500/2000', or under a compute budget 'step 500, 12.5/60 device-s' (for progress lines)."""
    for key, unit in (("train.device_s", "device-s"), ("train.flops", "FLOPs")):
        if float(flat.get(key) or 0) > 0:
            return f"step {step}, {float(values.get(key, 0.0)):.3g}/{float(flat[key]):.3g} {unit}"
    return f"step {step}/{flat.get('train.steps', '?')}"


def reached_end(flat: dict[str, Any], step: int, values: dict[str, Any]) -> bool:
    """Whether a report at `step` is the last of a run with flat settings `flat`: its step cap reached, or the
    budget it reports spent (train.device_s or train.flops). Readers of a run's reports (a trial, a Ray Train
    worker) send its last evaluation with the final row, not as an intermediate result."""
    if step >= int(flat.get("train.steps", 0)):
        return True
    return any(
        float(flat.get(key) or 0) > 0 and float(values.get(key, 0.0)) >= float(flat[key])
        for key in ("train.device_s", "train.flops")
    )
