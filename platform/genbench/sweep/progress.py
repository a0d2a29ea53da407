"""Terminal progress of a sweep: trials done / running (with their steps) / diverged, best so far, elapsed and ETA."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

RUNNING_SHOWN = 4  # running trials whose steps the progress line lists; more are counted only


def fmt_s(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts outcomes and prints one status line on every finished trial and at most every `every_s` seconds.

    Time left is the work left at the rate this session has worked, in trials: a finished trial counts whole, a
    running one by its last reported step against `steps` (the budget's). It is recomputed when a trial reports or
    ends and counts down in between, so it does not grow while trials run without reporting. The first report (a
    trial's first evaluation window) or, without one, the first completed trial gives an estimate of the whole
    sweep, printed once with how it was made.
    """

    def __init__(self, label: str, total: int, objective: tuple[str, str], out: TextIO = sys.stdout,
                 every_s: float = 10.0, steps: int = 0, live: int = 1) -> None:
        self.label, self.total, self.objective, self.out, self.every_s = label, total, objective, out, every_s
        self.steps, self.live = steps, max(live, 1)  # budget steps of a trial; trials that run at once
        self.start = time.monotonic()
        self.last_print = 0.0
        self.counts: dict[str, int] = {}
        self.best: tuple[float, str] | None = None
        self.baseline = 0  # trials finished before this session (a resume): not part of its rate
        self.running: dict[str, int] = {}  # trial id -> its last reported step
        self.started: dict[str, float] = {}  # trial id -> when it started (monotonic)
        self.eta: tuple[float, float] | None = None  # (seconds left, when that was computed)
        self.estimated = False

    def resumed(self, counts: dict[str, int]) -> None:
        """Outcomes of the configurations a resumed study had finished already."""
        self.counts = dict(counts)
        self.baseline = sum(counts.values())

    def trial_started(self, trial_id: str) -> None:
        """A trial started (or started over after losing its process): it is running at step 0."""
        self.started[trial_id] = time.monotonic()
        self.running[trial_id] = 0

    def advanced(self, trial_id: str, step: int) -> None:
        """A running trial reported an evaluation window that ended at `step`."""
        self.running[trial_id] = max(int(step), self.running.get(trial_id, 0))
        if not self.estimated and step > 0 and trial_id in self.started:
            self._first_estimate(trial_id, step, "its first evaluation window")
        self._update_eta()

    def finished(self, trial_id: str, status: str, metrics: dict[str, Any]) -> None:
        self.running.pop(trial_id, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        if not self.estimated and status == "completed" and trial_id in self.started and self.steps:
            self._first_estimate(trial_id, self.steps, "its whole run")
        metric, mode = self.objective
        value = metrics.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            better = self.best is None or (value > self.best[0] if mode == "max" else value < self.best[0])
            if better:
                self.best = (float(value), trial_id)
        self._update_eta()
        self.show(running=None, force=True)

    def _first_estimate(self, trial_id: str, step: int, how: str) -> None:
        """The sweep's length from one trial's pace: its seconds per step, `live` trials at once."""
        if not self.steps:
            return
        self.estimated = True
        took_s = time.monotonic() - self.started[trial_id]
        trial_s = took_s * self.steps / step
        left = self.total - self.baseline
        estimate_s = trial_s * math.ceil(left / self.live)
        print(f"[{self.label}] estimate: ~{fmt_s(estimate_s)} for {left} trials (trial {trial_id} reached step "
              f"{step} of {self.steps} in {took_s:.0f} s, {how}: ~{fmt_s(trial_s)} a trial, {self.live} at once)",
              file=self.out, flush=True)

    def _work(self) -> tuple[float, float]:
        """(trials' worth of work done this session, trials' worth left): running trials count by their steps."""
        partial = sum(min(s / self.steps, 1.0) for s in self.running.values()) if self.steps else 0.0
        done = sum(self.counts.values())
        return done - self.baseline + partial, max(self.total - done - partial, 0.0)

    def _update_eta(self) -> None:
        now = time.monotonic()
        worked, left = self._work()
        if worked > 0:
            self.eta = (left * (now - self.start) / worked, now)

    def _running_text(self, running: int | None) -> str:
        """', 2 running (steps 500/1000, 250/1000)': the running trials and how far each has reported."""
        count = running if running is not None else len(self.running)
        if not count:
            return ""
        steps = sorted(self.running.values(), reverse=True)[:RUNNING_SHOWN] if self.steps else []
        listed = ", ".join(f"{s}/{self.steps}" for s in steps) + (", ..." if len(self.running) > len(steps) else "")
        return f", {count} running" + (f" (steps {listed})" if steps else "")

    def show(self, running: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_print < self.every_s:
            return
        self.last_print = now
        done = sum(self.counts.values())
        elapsed = now - self.start
        left = max(self.eta[0] - (now - self.eta[1]), 0.0) if self.eta and done < self.total else None
        eta = f", ~{fmt_s(left)} left" if left is not None else ""
        bad = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if s != "completed")
        best = f" | best {self.objective[0]} {self.best[0]:.4g} ({self.best[1]})" if self.best else ""
        line = f"[{self.label}] {done}/{self.total} done{' (' + bad + ')' if bad else ''}{self._running_text(running)}"
        print(f"{line}{best} | {fmt_s(elapsed)} elapsed{eta}", file=self.out, flush=True)
