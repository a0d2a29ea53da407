"""Benchmark: throughput of 1 vs 2 Ray Train workers and the fixed start-up cost of Ray Train vs in-process runs.

Each path trains the same run twice, short and long; the difference gives steady-state throughput (samples/s)
and the remainder the fixed cost. Ratios are against the in-process baseline measured in this same process.

    .venv/bin/python benchmarks/train_workers.py --family gan --short 50 --long 1050
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from genbench.sweep.tuner import start_local_ray
from genbench.train.ray_worker import Workers, run_distributed
from genbench.train.run import run


@dataclass
class PathTiming:
    path: str
    short_s: float  # wall seconds of the short run
    long_s: float
    samples_per_s: float  # steady state: extra samples of the long run / extra seconds
    fixed_s: float  # short run's wall time not explained by its steps at the steady rate


def _flat(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    return {"family": args.family, "data.name": args.data, "train.steps": steps, "train.batch_size": args.batch,
            "eval.every": steps, "eval.n_samples": 500, "train.checkpoint_every": 0, "train.collapse_evals": 0}


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _path_timing(name: str, train: Any, args: argparse.Namespace) -> PathTiming:
    train(_flat(args, args.short))  # warm-up: imports, data, first worker processes; not counted
    short = _timed(lambda: train(_flat(args, args.short)))
    long = _timed(lambda: train(_flat(args, args.long)))
    if long <= short:
        raise SystemExit(f"{name}: the long run was not slower than the short one ({long:.1f} s vs {short:.1f} s); "
                         "the machine is too noisy for these lengths: raise --long")
    rate = (args.long - args.short) * args.batch / (long - short)
    timing = PathTiming(name, short, long, rate, short - args.short * args.batch / rate)
    print(f"  {name:<22} short {short:6.1f} s  long {long:6.1f} s  -> {rate:9.0f} samples/s, "
          f"fixed {timing.fixed_s:5.1f} s", flush=True)
    return timing


def _ray_train(workers: int, storage: str) -> Any:
    def train(flat: dict[str, Any]) -> None:
        row, _ = run_distributed(flat, Workers(count=workers, cpus=1, max_failures=0), storage)
        if row.get("status") != "completed":
            raise SystemExit(f"Ray Train run failed: {row.get('error')}")

    return train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="gan")
    parser.add_argument("--data", default="grid25")
    parser.add_argument("--batch", type=int, default=256, help="global batch (each of 2 workers takes half)")
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--long", type=int, default=1050)
    parser.add_argument("--out", default="benchmarks/results/train_workers.json")
    args = parser.parse_args()
    print(f"{args.family} on {args.data}, global batch {args.batch}; {os.cpu_count()} CPUs", flush=True)
    baseline = _path_timing("in-process (1 thread)", lambda flat: run(flat), args)
    ray_init_s = _timed(lambda: start_local_ray(dashboard=True))
    print(f"  local Ray start: {ray_init_s:.1f} s (paid once per sweep or train command)", flush=True)
    with tempfile.TemporaryDirectory() as storage:
        timings = [baseline] + [_path_timing(f"Ray Train, {n} worker{'s' * (n > 1)}", _ray_train(n, storage), args)
                                for n in (1, 2)]
    print("\nthroughput vs in-process:  " + ",  ".join(
        f"{t.path} x{t.samples_per_s / baseline.samples_per_s:.2f}" for t in timings[1:]))
    print("fixed start-up vs in-process:  " + ",  ".join(
        f"{t.path} +{t.fixed_s - baseline.fixed_s:.1f} s" for t in timings[1:]))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"settings": vars(args), "ray_init_s": ray_init_s, "timings": [asdict(t) for t in timings],
                   "cpus": os.cpu_count(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)
    import ray

    ray.shutdown()
    print(f"\nwritten: {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
