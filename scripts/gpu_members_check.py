"""GPU check of batched seeds: S members as one batched model against one member alone, per family, on one device.

One command, a few minutes on one GPU (grid25 is generated, nothing downloads):

    python3 scripts/gpu_members_check.py --out gpu_members.json

For every family with a batched model (FamilySpec.batched) at its default sizes on `--data`, it times the bare
training steps (batch draws and train_step, as the `members` bench case does on the CPU) of one member alone (the
family's own train_step) and of S = 1, 2, 4, 8, 16 members batched (genbench.train.members' model), in rounds
that alternate them; wall time between device synchronisations, the first round left out (CUDA start-up and
cuBLAS heuristics). It prints member-steps/s and the batched throughput over one member's, and writes the same as
JSON. The issue's GPU target: 8 batched members at least 6x one member's throughput. `--device cpu --steps 2`
runs it on a CPU machine (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from genbench.config import RunConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.families import FAMILIES
from genbench.train.device import Placement, apply_backends, place, resolve, synchronize, train_split_on

TARGET = (8, 6.0)  # 8 batched members >= 6x one member's throughput on one GPU


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"), help="train.device")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--members", default="1,2,4,8,16", help="comma-separated S")
    parser.add_argument("--data", default="grid25", help="a vector data set genbench makes (the batching nets)")
    parser.add_argument("--families", default="", help="comma-separated names (default: every batching family)")
    parser.add_argument("--out", default="gpu_members.json", help="where the JSON goes")
    return parser.parse_args(argv)


Steps = Callable[[int], None]


def _views(cfg: RunConfig, data: Dataset, placement: Placement, size: int) -> list[Any]:
    """`size` members, each built from its own seed as its per-seed run builds it, on the device."""
    views = []
    for seed in range(size):
        torch.manual_seed(seed)
        views.append(place(FAMILIES.get(cfg.family).build(cfg, data), placement))
    return views


def one_member(cfg: RunConfig, data: Dataset, placement: Placement) -> Steps:
    """One member alone: its family's own train_step on batches drawn on the device."""
    (family,) = _views(cfg, data, placement, 1)
    train, rows = train_split_on(data, placement).train, cfg.train.batch_size * family.batches_per_step
    order = torch.Generator(placement.device).manual_seed(0)

    def run(steps: int) -> None:
        for _ in range(steps):
            family.train_step(train[torch.randint(len(train), (rows,), generator=order, device=train.device)])

    return run


def batched_members(cfg: RunConfig, data: Dataset, placement: Placement, size: int) -> Steps:
    """`size` members as one batched model, each with its own batch order and noise generator on the device."""
    batched = FAMILIES.get(cfg.family).build_batched(_views(cfg, data, placement, size), cfg)
    train, rows = train_split_on(data, placement).train, cfg.train.batch_size * batched.batches_per_step
    gens = [torch.Generator(placement.device).manual_seed(s) for s in range(size)]
    orders = [torch.Generator(placement.device).manual_seed(s) for s in range(size)]

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.stack([torch.randint(len(train), (rows,), generator=g, device=train.device) for g in orders])
            batched.train_step(train[idx], gens)  # (S, rows, D)

    return run


def timed(runs: dict[str, Steps], rounds: int, steps: int, device: torch.device) -> dict[str, list[float]]:
    """Wall seconds of a block of each run per round, the order rotated every round; round 0 warms up."""
    names, times = list(runs), {name: [] for name in runs}  # type: ignore[var-annotated]
    for r in range(rounds + 1):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            synchronize(device)
            start = time.perf_counter()
            runs[name](steps)
            synchronize(device)
            if r:
                times[name].append(time.perf_counter() - start)
    return times


def check_family(family: str, args: argparse.Namespace) -> dict[str, Any]:
    cfg = from_flat({"family": family, "data.name": args.data, "seed": 0, "train.device": args.device})
    placement = resolve(cfg.train)
    apply_backends(placement)
    data, sizes = load_dataset(cfg.data), [int(s) for s in args.members.split(",")]
    runs = {"one": one_member(cfg, data, placement)}
    runs.update({f"S={s}": batched_members(cfg, data, placement, s) for s in sizes})
    times = timed(runs, args.rounds, args.steps, placement.device)
    one = args.steps / statistics.median(times["one"])  # member-steps/s of one member alone
    rates = {s: s * args.steps / statistics.median(times[f"S={s}"]) for s in sizes}
    return {
        "family": family,
        "batch_size": cfg.train.batch_size,
        "one_member_steps_per_s": one,
        "batched": {str(s): {"member_steps_per_s": rate, "over_one": rate / one} for s, rate in rates.items()},
        "seconds": times,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    families = args.families.split(",") if args.families else [n for n in FAMILIES.names() if FAMILIES.get(n).batched]
    placement = resolve(from_flat({"family": families[0], "train.device": args.device}).train)
    device = placement.columns()["cost.device"]
    print(f"gpu_members_check: {device}, torch {torch.__version__}, {args.rounds} rounds of {args.steps} steps")
    results = []
    for family in families:
        print(f"  {family} ...", flush=True)
        results.append(check_family(family, args))
        r = results[-1]
        print(f"  {family}: one member {r['one_member_steps_per_s']:.0f} steps/s (batch {r['batch_size']})")
        for s, b in r["batched"].items():
            print(f"    S={s:>2}: {b['member_steps_per_s']:9.0f} member-steps/s, {b['over_one']:5.2f}x one member")
    size, goal = TARGET
    met = {r["family"]: r["batched"][str(size)]["over_one"] >= goal for r in results if str(size) in r["batched"]}
    report = {"device": device, "torch": torch.__version__, "python": platform.python_version(), "args": vars(args)}
    with open(args.out, "w") as f:
        json.dump({**report, "target": {"members": size, "over_one": goal, "met": met}, "results": results}, f)
    print(f"target {size} members >= {goal}x one: {met}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
