"""Terminal progress of a sweep: trials done / running / diverged, best so far, elapsed and ETA."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


def fmt_s(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts outcomes and prints one status line on every finished trial and at most every `every_s` seconds."""

    def __init__(self, label: str, total: int, objective: tuple[str, str], out: TextIO = sys.stdout,
                 every_s: float = 10.0) -> None:
        self.label, self.total, self.objective, self.out, self.every_s = label, total, objective, out, every_s
        self.start = time.monotonic()
        self.last_print = 0.0
        self.counts: dict[str, int] = {}
        self.best: tuple[float, str] | None = None

    def finished(self, trial_id: str, status: str, metrics: dict[str, Any]) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        metric, mode = self.objective
        value = metrics.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            better = self.best is None or (value > self.best[0] if mode == "max" else value < self.best[0])
            if better:
                self.best = (float(value), trial_id)
        self.show(running=None, force=True)

    def show(self, running: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_print < self.every_s:
            return
        self.last_print = now
        done = sum(self.counts.values())
        elapsed = now - self.start
        eta = f", ~{fmt_s(elapsed / done * (self.total - done))} left" if 0 < done < self.total else ""
        bad = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if s != "completed")
        run = f", {running} running" if running else ""
        best = f" | best {self.objective[0]} {self.best[0]:.4g} ({self.best[1]})" if self.best else ""
        line = f"[{self.label}] {done}/{self.total} done{' (' + bad + ')' if bad else ''}{run}{best}"
        print(f"{line} | {fmt_s(elapsed)} elapsed{eta}", file=self.out, flush=True)
