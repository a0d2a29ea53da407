"""Case 'ray_train': Ray Train with 1 and 2 workers against the in-process path (throughput and fixed start-up)."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, timed


@dataclass
class PathTiming:
    path: str
    short_s: float  # wall seconds of the short run
    long_s: float
    samples_per_s: float  # steady state: extra samples of the long run / extra seconds
    fixed_s: float  # short run's wall time not explained by its steps at the steady rate


@dataclass
class Setting:
    """What every path trains: the same run, short and long."""

    family: str = "gan"
    data: str = "grid25"
    batch: int = 256  # global batch (each of 2 workers takes half)
    short: int = 50
    long: int = 1050
    warm_up: bool = True  # one short run first, not counted (imports, data, first worker processes)

    def flat(self, steps: int) -> dict[str, Any]:
        return {
            "family": self.family,
            "data.name": self.data,
            "train.steps": steps,
            "train.batch_size": self.batch,
            "eval.every": steps,
            "eval.n_samples": 500,
            "train.checkpoint_every": 0,
            "train.collapse_evals": 0,
        }


Train = Callable[[dict[str, Any]], None]


def path_timing(name: str, train: Train, s: Setting, say: Callable[[str], None]) -> PathTiming:
    """Steady-state samples/s from the difference of a long and a short run; the rest of the short run is fixed."""
    if s.warm_up:
        train(s.flat(s.short))
    short = timed(lambda: train(s.flat(s.short)))
    long = timed(lambda: train(s.flat(s.long)))
    if long <= short:  # a busy machine slowed the short run more than the long one: no steady rate to report
        say(f"  {name}: the long run was not slower than the short one ({long:.1f} s vs {short:.1f} s): too noisy")
        return PathTiming(name, short, long, math.nan, math.nan)
    rate = (s.long - s.short) * s.batch / (long - short)
    timing = PathTiming(name, short, long, rate, short - s.short * s.batch / rate)
    say(
        f"  {name:<22} short {short:6.1f} s  long {long:6.1f} s  -> {rate:9.0f} samples/s, "
        f"fixed {timing.fixed_s:5.1f} s"
    )
    return timing


def in_process(flat: dict[str, Any]) -> None:
    from genbench.train.run import run

    run(flat)


def ray_train(workers: int, storage: str) -> Train:
    def train(flat: dict[str, Any]) -> None:
        from genbench.train.ray_worker import Workers, run_distributed

        row, _ = run_distributed(flat, Workers(count=workers, cpus=1, max_failures=0), storage)
        if row.get("status") != "completed":
            raise RuntimeError(f"Ray Train run failed: {row.get('error')}")

    return train


def compare(s: Setting, say: Callable[[str], None]) -> dict[str, Any]:
    """In-process, then Ray Train with 1 and 2 workers on a private local Ray; ratios against in-process."""
    import ray

    from genbench.sweep.connect import start_local_ray

    say(f"  {s.family} on {s.data}, global batch {s.batch}, {s.short} and {s.long} steps")
    baseline = path_timing("in-process (1 thread)", in_process, s, say)
    ray_init_s = timed(lambda: start_local_ray(dashboard=True))  # Ray Train's controller uses the state API
    say(f"  local Ray start: {ray_init_s:.1f} s (paid once per sweep or train command)")
    try:
        with tempfile.TemporaryDirectory(prefix="genbench-bench-") as storage:
            timings = [baseline] + [
                path_timing(f"Ray Train, {n} worker{'s' * (n > 1)}", ray_train(n, storage), s, say) for n in (1, 2)
            ]
    finally:
        ray.shutdown()
    return {
        "settings": asdict(s),
        "ray_init_s": ray_init_s,
        "timings": [asdict(t) for t in timings],
        "throughput_vs_in_process": {t.path: t.samples_per_s / baseline.samples_per_s for t in timings[1:]},
        "fixed_s_vs_in_process": {t.path: t.fixed_s - baseline.fixed_s for t in timings[1:]},
        "two_over_one_worker": timings[2].samples_per_s / timings[1].samples_per_s,
    }


@CASES.register(
    "ray_train", "Ray Train path: fixed start-up and throughput of 1 and 2 workers vs in-process (DCGAN on digits)"
)
def ray_train_case(ctx: Context) -> CaseResult:
    setting = Setting("gan", "digits", 512, *ctx.pick((5, 45, True), (10, 110, True)))
    result = compare(setting, ctx.say)
    lines = [
        "throughput vs in-process: "
        + ", ".join(f"{p} x{r:.2f}" for p, r in result["throughput_vs_in_process"].items()),
        "fixed start-up vs in-process: "
        + ", ".join(f"{p} +{f:.1f} s" for p, f in result["fixed_s_vs_in_process"].items()),
        f"2 workers / 1 worker throughput: x{result['two_over_one_worker']:.2f}",
    ]
    return CaseResult(lines, result)


def created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
