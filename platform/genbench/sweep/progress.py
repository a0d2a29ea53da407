"""Terminal progress of a sweep: trials done / running (with their steps) / diverged, best so far, elapsed and ETA."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

RUNNING_SHOWN = 4  # running trials whose steps the progress line lists; more are counted only


def fmt_s(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts outcomes and prints one status line on every finished trial and at most every `every_s` seconds.

    Time left is the work left, in trials, at the measured length of a trial, `live` at once (fewer when fewer are
    left): a finished trial counts whole, a running one by its last reported step against `steps` (the budget's).
    A trial's length is the mean of the finished trials' lengths and of the running ones' projected lengths (from
    the pace between their reports, or their time so far scaled to the budget's steps after one report). It is
    recomputed when a trial reports or ends and counts down in between, so it does not grow while trials run. The
    first report (a trial's first evaluation window) or, without one, the first completed trial gives the estimate
    of the whole sweep, printed once with how it was made.
    """

    def __init__(
        self,
        label: str,
        total: int,
        objective: tuple[str, str],
        out: TextIO = sys.stdout,
        every_s: float = 10.0,
        steps: float = 0,
        live: int = 1,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "steps",
        time_attr: str = "step",
    ) -> None:
        self.label, self.total, self.objective, self.out, self.every_s = label, total, objective, out, every_s
        # one trial's budget ('steps', though it may be device-seconds or FLOPs: `unit`); trials that run at once
        self.steps, self.live = steps, max(live, 1)
        self.unit, self.time_attr = unit, time_attr  # the budget's unit, and the report key that counts it
        self.clock = clock
        self.start = clock()
        self.last_print = 0.0
        self.counts: dict[str, int] = {}
        self.best: tuple[float, str] | None = None
        self.running: dict[str, float] = {}  # trial id -> its last reported step
        self.started: dict[str, float] = {}  # trial id -> when it started (clock)
        self.paces: dict[str, float] = {}  # trial id -> its length in seconds: measured, or projected from its reports
        self.first_report: dict[str, tuple[float, float]] = {}  # trial id -> (step, clock) of its first report
        self.eta: tuple[float, float] | None = None  # (seconds left, when that was computed)
        self.estimated = False

    def resumed(self, counts: dict[str, int]) -> None:
        """Outcomes of the configurations a resumed study had finished already."""
        self.counts = dict(counts)

    def trial_started(self, trial_id: str) -> None:
        """A trial started (or started over after losing its process): it is running at step 0."""
        self.started[trial_id] = self.clock()
        self.running[trial_id] = 0
        self.paces.pop(trial_id, None)
        self.first_report.pop(trial_id, None)

    def advanced(self, trial_id: str, step: float, run_s: float = 0.0) -> None:
        """A running trial reported an evaluation window that ended at `step`, `run_s` seconds into its run (the
        run's own clock, cost.wall_s: the trial's time before it is start-up, paid once)."""
        if trial_id not in self.started or step <= 0 or not self.steps:
            return
        now = self.clock()
        first = self.first_report.setdefault(trial_id, (step, now))
        self.running[trial_id] = max(step, self.running.get(trial_id, 0))
        took_s = now - self.started[trial_id]
        self.paces[trial_id] = self._length(took_s, min(run_s, took_s), first, (self.running[trial_id], now))
        if not self.estimated:
            self._first_estimate(
                trial_id, took_s, f"reached {self._of(step)} in {took_s:.0f} s, its first evaluation window"
            )
        self._update_eta()

    def _length(self, took_s: float, run_s: float, first: tuple[float, float], last: tuple[float, float]) -> float:
        """A running trial's projected length: start-up once, then the rest of its steps at the pace between its
        reports; after one report, at its run's pace so far (its whole time's without the run's own clock)."""
        if last[0] > first[0]:
            return took_s + (self.steps - last[0]) * (last[1] - first[1]) / (last[0] - first[0])
        startup_s = took_s - run_s if run_s > 0 else 0.0
        return startup_s + (took_s - startup_s) * self.steps / last[0]

    def finished(self, trial_id: str, status: str, metrics: dict[str, Any]) -> None:
        self.running.pop(trial_id, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        if trial_id in self.started:
            took_s = self.clock() - self.started[trial_id]
            self.paces[trial_id] = took_s
            if not self.estimated and status == "completed":
                self._first_estimate(trial_id, took_s, f"completed in {took_s:.0f} s")
        metric, mode = self.objective
        value = metrics.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            better = self.best is None or (value > self.best[0] if mode == "max" else value < self.best[0])
            if better:
                self.best = (float(value), trial_id)
        self._update_eta()
        self.show(running=None, force=True)

    def _first_estimate(self, trial_id: str, took_s: float, how: str) -> None:
        """The sweep's length from the first trial that reported or completed, printed once."""
        self.estimated = True
        self._update_eta()
        if self.eta is None:
            return
        print(
            f"[{self.label}] estimate: ~{fmt_s(self.eta[0])} left for {self.total - sum(self.counts.values())} "
            f"trials, {min(self.live, self.total)} at once (trial {trial_id} {how}: ~{fmt_s(self.paces[trial_id])} "
            "a trial)",
            file=self.out,
            flush=True,
        )

    def _update_eta(self) -> None:
        """Time left: the work left (running trials by their steps) x a trial's mean length / trials at once."""
        if not self.paces:
            return
        trial_s = sum(self.paces.values()) / len(self.paces)
        partial = sum(min(s / self.steps, 1.0) for s in self.running.values()) if self.steps else 0.0
        unfinished = self.total - sum(self.counts.values())
        left = max(unfinished - partial, 0.0)
        self.eta = (left * trial_s / max(min(self.live, unfinished), 1), self.clock())

    def _running_text(self, running: int | None) -> str:
        """', 2 running (steps 500/1000, 250/1000)': the running trials and how far each has reported."""
        count = running if running is not None else len(self.running)
        if not count:
            return ""
        steps = sorted(self.running.values(), reverse=True)[:RUNNING_SHOWN] if self.steps else []
        listed = ", ".join(f"{s:.3g}/{self.steps:g}" for s in steps) + (
            ", ..." if len(self.running) > len(steps) else ""
        )
        return f", {count} running" + (f" ({self.unit} {listed})" if steps else "")

    def _of(self, spent: float) -> str:
        """'step 500 of 2000', '6.1 of 60 device-s'."""
        if self.unit == "steps":
            return f"step {spent:g} of {self.steps:g}"
        return f"{spent:.3g} of {self.steps:g} {self.unit}"

    def show(self, running: int | None, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_print < self.every_s:
            return
        self.last_print = now
        done = sum(self.counts.values())
        elapsed = now - self.start
        left = self.eta[0] - (now - self.eta[1]) if self.eta and done < self.total else None
        eta = "" if left is None else f", ~{fmt_s(left)} left" if left >= 0 else f", {fmt_s(-left)} past the estimate"
        bad = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if s != "completed")
        best = f" | best {self.objective[0]} {self.best[0]:.4g} ({self.best[1]})" if self.best else ""
        line = f"[{self.label}] {done}/{self.total} done{' (' + bad + ')' if bad else ''}{self._running_text(running)}"
        print(f"{line}{best} | {fmt_s(elapsed)} elapsed{eta}", file=self.out, flush=True)
