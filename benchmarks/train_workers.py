"""Benchmark: throughput of 1 vs 2 Ray Train workers and the fixed start-up cost of Ray Train vs in-process runs.

A thin wrapper around the 'ray_train' case of `genbench bench` (genbench/bench/ray_train.py) with the run's
settings on the command line. Each path trains the same run twice, short and long; the difference gives
steady-state throughput (samples/s) and the remainder the fixed cost. Ratios are against the in-process
baseline measured in this same process.

    .venv/bin/python benchmarks/train_workers.py --family gan --short 50 --long 1050
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from genbench.bench.ray_train import Setting, compare, created


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
    result = compare(Setting(args.family, args.data, args.batch, args.short, args.long), print)
    print(
        "\nthroughput vs in-process:  "
        + ",  ".join(f"{p} x{r:.2f}" for p, r in result["throughput_vs_in_process"].items())
    )
    print(
        "fixed start-up vs in-process:  "
        + ",  ".join(f"{p} +{f:.1f} s" for p, f in result["fixed_s_vs_in_process"].items())
    )
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({**result, "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "created": created()}, f, indent=2)
    print(f"\nwritten: {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
