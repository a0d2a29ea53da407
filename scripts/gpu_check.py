"""GPU check: every family trains a few hundred steps on one device with its GPU options; throughput, memory, loss.

One command, a few minutes on one GPU (nothing downloads: digits ship with the package):

    .venv/bin/python scripts/gpu_check.py --out gpu_check.json

It prints, per family, training samples/s (after the first window, which holds CUDA start-up, cuDNN autotuning
and any compile), sampling samples/s, peak device memory (torch.cuda.max_memory_allocated; peak process RSS on
CPU) and whether every final train.* loss is finite, then writes the same as JSON. It exits 1 when a family fails
or ends with a non-finite loss. `--device cpu --steps 5` runs it on a CPU machine (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from genbench.config import from_flat
from genbench.data import load_dataset
from genbench.families import FAMILIES
from genbench.train.device import Placement, apply_backends, place, resolve, synchronize
from genbench.train.evaluate import peak_memory_bytes, sample_cost
from genbench.train.loop import train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="train.device")
    parser.add_argument("--bf16", default="auto", help="train.bf16: auto (on with a bf16 GPU), true or false")
    parser.add_argument("--channels-last", default="auto", help="train.channels_last: auto (on with CUDA), true, false")
    parser.add_argument("--tf32", default="auto", help="train.tf32: auto (on with CUDA), true or false")
    parser.add_argument("--compile", action="store_true", help="train.compile=true (adds compile time per family)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per family")
    parser.add_argument("--log-every", type=int, default=25, help="steps per timed window")
    parser.add_argument("--data", default="digits", help="a data set that ships with genbench: digits, stacked_digits")
    parser.add_argument("--families", default=",".join(FAMILIES.names()), help="comma-separated family names")
    parser.add_argument("--batch", type=int, default=0, help="train.batch_size (0: each family's default)")
    parser.add_argument("--sample-n", type=int, default=256, help="samples generated once per family to time sampling")
    parser.add_argument("--debug-size", action="store_true", help="each family's debug-sized model (tests)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", default="gpu_check.json", help="where the JSON goes")
    return parser.parse_args(argv)


def run_flat(family: str, args: argparse.Namespace) -> dict[str, Any]:
    """The family's default model and batch at `args.steps` steps; no evaluation until the last step."""
    flat: dict[str, Any] = {
        "family": family,
        "data.name": args.data,
        "train.steps": args.steps,
        "train.log_every": min(args.log_every, args.steps),
        "eval.every": args.steps,
        "train.collapse_evals": 0,
        "train.device": args.device,
        "train.bf16": args.bf16,
        "train.channels_last": args.channels_last,
        "train.tf32": args.tf32,
        "train.compile": args.compile,
    }
    if args.batch:
        flat["train.batch_size"] = args.batch
    return {**flat, **(FAMILIES.get(family).debug if args.debug_size else {})}


def check_family(family: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one family and measure it; an exception is reported in the result, not raised."""
    try:
        return _measure(family, args)
    except Exception as exc:  # one family's failure must not hide the others' figures
        return {
            "family": family,
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }


def _measure(family: str, args: argparse.Namespace) -> dict[str, Any]:
    cfg = from_flat(run_flat(family, args))
    placement = resolve(cfg.train)
    apply_backends(placement)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.data)
    model = place(FAMILIES.get(family).build(cfg, data), placement)
    if placement.cuda:
        torch.cuda.reset_peak_memory_stats(placement.device)
    marks: list[tuple[int, float, dict[str, float]]] = []  # (step, seconds, window means) at each report

    def report(step: int, values: dict[str, float]) -> None:  # after the window's host sync: GPU work is done
        marks.append((step, time.perf_counter(), values))

    syncs: dict[str, Any] = {}
    start = time.perf_counter()
    with host_syncs(placement.cuda, syncs):
        outcome = train(model, data, cfg, report, lambda f: {}, placement=placement)
    synchronize(placement.device)
    rows = cfg.train.batch_size * model.batches_per_step
    return {
        "family": family,
        **_figures(marks, start, rows),
        "status": outcome.status,
        "steps": outcome.steps,
        **syncs,
        **_loss_check(marks),
        "peak_mem_bytes": peak_memory_bytes(placement.device),
        "sample_per_s": sample_cost(model, args.sample_n)["cost.sample_per_s"],
        "batch_rows": rows,
        "params": sum(p.numel() for m in model.modules().values() for p in m.parameters()),
        **placement.columns(),
    }


@contextmanager
def host_syncs(cuda: bool, into: dict[str, Any]) -> Iterator[None]:
    """Count the host-device synchronisations of the block (CUDA only, torch's sync debug mode) and where they came
    from: a loop without per-step syncs shows a few per report window, not one or more per step."""
    if not cuda:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")
    sites = Counter(
        f"{w.filename.rsplit('/genbench/', 1)[-1]}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)
    )
    into.update(host_syncs=sum(sites.values()), host_sync_sites=dict(sites.most_common(8)))


def _figures(marks: list[tuple[int, float, dict[str, float]]], start: float, rows: int) -> dict[str, float]:
    """Steady-state training samples/s between the first and the last report; the first window's wall time."""
    (first_step, first_t, _), (last_step, last_t, _) = marks[0], marks[-1]
    steady = (last_step - first_step) * rows / (last_t - first_t) if last_step > first_step else math.nan
    return {"train_samples_per_s": steady, "first_window_s": first_t - start, "train_s": last_t - start}


def _loss_check(marks: list[tuple[int, float, dict[str, float]]]) -> dict[str, Any]:
    losses = {k: v for k, v in marks[-1][2].items() if ".loss" in k}
    finite = bool(losses) and all(math.isfinite(v) for v in losses.values())
    return {"final_losses": losses, "ok": finite}


def header(placement: Placement) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "device": placement.columns()["cost.device"],
        "options": placement.columns()["cost.device_options"],
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'family':<15} {'ok':<4} {'train samples/s':>16} {'sample/s':>10} {'peak MiB':>9} {'first window':>13}"
        f" {'host syncs':>11}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['family']:<15} FAIL {r['error']}")
            continue
        print(
            f"{r['family']:<15} {'yes' if r['ok'] else 'NO':<4} {r['train_samples_per_s']:16.0f} "
            f"{r['sample_per_s']:10.0f} {r['peak_mem_bytes'] / 2**20:9.1f} {r['first_window_s']:12.1f}s"
            f" {r.get('host_syncs', '-'):>11}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    first = from_flat(run_flat(args.families.split(",")[0], args))  # a bad --device or --bf16 fails before training
    summary = header(resolve(first.train))
    print(
        f"gpu_check: {summary['device']} ({summary['options']}), torch {summary['torch']}, "
        f"{args.steps} steps per family on {args.data}",
        flush=True,
    )
    results = []
    for family in args.families.split(","):
        results.append(check_family(family, args))
        print(f"  {family}: {'ok' if results[-1]['ok'] else 'FAILED'}", flush=True)
    print_table(results)
    with open(args.out, "w") as f:
        json.dump({**summary, "steps": args.steps, "data": args.data, "families": results}, f, indent=2)
    print(f"Results: {args.out}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    from genbench.errors import GenbenchError

    try:
        sys.exit(main())
    except GenbenchError as exc:  # a bad option: one line, no traceback
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        sys.exit(2)
