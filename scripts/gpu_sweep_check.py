"""GPU sweep check: a sweep's Ray path on this machine's GPU: dry-run rows, two trials packed per GPU, NCCL Ray Train.

One command, a few minutes on one GPU (nothing downloads):

    .venv/bin/python scripts/gpu_sweep_check.py --out gpu_sweep_check.json

It runs three checks and prints their figures as it goes, then writes them as JSON:

1. dry_run: `genbench dry-run` (the CLI, in a subprocess, on its own private Ray) of a 4-trial GAN study on ring8
   that the script writes to a temporary folder, every trial asking Ray for half a GPU
   (`--set resources.gpus_per_trial=0.5`: two trials per GPU). It reads the rows back and prints each one's status,
   cost.device, cost.gpu_share, cost.visible_devices, cost.device_s and wall, and how many trials trained at once.
   It fails when a trial did not complete, or trained on the CPU while holding a GPU share.
2. packing: the same GAN for the same steps as one trial alone (a Ray task holding 1 GPU) and as two trials
   packed on one GPU (two tasks of 0.5 GPU each, at the same time), each through genbench's run() on the device
   Ray assigned (trainable.ray_assignment, as every trial does). Training samples/s are timed between the first
   and the last report, as scripts/gpu_check.py does; the ratio is the pair's sum over the lone trial's.
3. ray_train: one Ray Train worker holding one GPU (train.ray_worker.run_distributed; Ray Train sets up its
   process group on NCCL for GPU workers): its status, steps, device and wall.

Checks 2 and 3 run on a private local Ray the script starts (ray.init(address="local"), never another cluster) and
shuts down. Exit 0 when every check passed, 1 when one failed (the reasons are printed and in the JSON), 2 for bad
options. `--device cpu` runs the same at CPU size on any machine (1.5-3.5 minutes on 2 busy cores; the test suite does):
CPU trials holding no GPU share, CPU tasks, one gloo worker; its ratio then says what two trials on two cores give.
`--device cuda` fails (2) where torch sees no GPU; `auto` (the default) takes the GPU where there is one.

On the GPU machine this project is sometimes lent (one NVIDIA H200, 16 CPUs, Python 3.12, torch 2.11+cu130 with
pyarrow, pandas, pyyaml, pillow, scikit-learn, aiohttp, grpcio, protobuf ... already there, but no ray, optuna or
plotly, and no network), carry the 43 wheels scripts/gpu_wheels.txt lists with their files and sizes: ray 2.60.0
with what its [default] (the dashboard, which genbench starts for Ray Train), [tune] and [train] extras need,
optuna 5.0.0, plotly 7.1.0, their needs that the machine's image lacks, and protobuf, typing-extensions and
packaging at the versions those need (the image's may be older); 110 MiB in all, Ray's wheel 76 MiB, more than one
call carries. (Checked here: the same set at cp311 in a fresh venv holding only torch and the image's packages
passed `--device cpu`; the cp312 wheels import and start a local Ray with its dashboard on Python 3.12.1.)
Here, in the repository root:

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl/py312 -r scripts/gpu_wheels.txt
    tar cf .whl/wheels.tar -C .whl/py312 . && split -n 2 -d .whl/wheels.tar .whl/part-   # two halves of ~55 MiB

(.whl/ is git-ignored; pure-python wheels come with those --platform tags as they are.) Then two calls of the
device tool, the second at once while the machine is still warm (each call carries at most 64 MiB):

    carry [".whl/part-00"]: mkdir -p /tmp/carry && mv .whl/part-00 /tmp/carry/ && python3 -m pip list 2>/dev/null |
        grep -iE '^(protobuf|typing.extensions|packaging|narwhals|aiohttp|grpcio|numpy) '
    carry [".whl/part-01"], timeout_s 420: cat /tmp/carry/part-00 .whl/part-01 | tar x -C /tmp/carry &&
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            /tmp/carry/*.whl &&
        export PYTHONPATH=/tmp/site:$PWD/platform && python3 scripts/gpu_sweep_check.py --out $OUT/gpu_sweep_check.json

PYTHONPATH must hold absolute paths where a Ray worker or the dry-run's subprocess runs in another folder; the script
makes its entries absolute itself. The first call's pip list shows the versions of the image's packages that the
carried wheels lean on; a conflict would show up as an ImportError in the checks' reasons.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genbench.errors import ConfigError, GenbenchError

STUDY = "gpu_sweep_check"
ROW_COLUMNS = ("status", "cost.device", "cost.gpu_share", "cost.visible_devices", "cost.device_s", "cost.wall_s")


@dataclass(frozen=True)
class Sizes:
    """How big the runs are: a few minutes in all on one GPU, 1.5-3.5 minutes on 2 busy CPU cores."""

    steps: int  # each dry-run trial and the Ray Train run
    pack_steps: int  # each packing run: long enough that its timed window dwarfs the reports' jitter
    log_every: int  # one report (and host sync) per window: the packing runs' timing marks
    fixed: dict[str, Any] = field(default_factory=dict)  # model, batch and data of every run


# The GAN's default networks (width 128, depth 3) at batch 256: the launch-bound small model that packing is for.
GPU_SIZES = Sizes(400, 3000, 50, {"train.batch_size": 256, "gan.latent_dim": 8})
CPU_SIZES = Sizes(
    40,
    800,
    10,
    {
        "train.batch_size": 64,
        "gan.latent_dim": 8,
        "gan.g_width": 16,
        "gan.d_width": 16,
        "gan.g_depth": 2,
        "gan.d_depth": 2,
        "data.n_train": 2000,
        "data.n_test": 500,
        "eval.n_samples": 500,
    },
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto: the GPU where torch sees one; cpu: the small CPU version (tests)",
    )
    parser.add_argument("--share", type=float, default=0.5, help="GPU share of each dry-run and packed trial (<= 0.5)")
    parser.add_argument("--trials", type=int, default=4, help="trials of the dry run")
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="steps of each dry-run trial and the Ray Train run (0: 400 on GPU, 40 on CPU)",
    )
    parser.add_argument(
        "--pack-steps", type=int, default=0, help="steps of each packing run (0: 3000 on GPU, 800 on CPU)"
    )
    parser.add_argument(
        "--work",
        default="",
        help="folder for the study, its results and Ray Train's storage (default: a temporary one, removed at the end)",
    )
    parser.add_argument("--out", default="gpu_sweep_check.json", help="where the JSON goes")
    return parser.parse_args(argv)


def use_cuda(device: str, share: float, trials: int) -> bool:
    """Whether the checks run on the GPU; a bad option is a ConfigError (exit 2) before anything starts."""
    if not 0 < share <= 0.5:
        raise ConfigError(
            f"expected a share in (0, 0.5], got {share:g}",
            key="--share",
            fix="e.g. --share 0.5 (two trials per GPU) or 0.25 (four); packing needs two per GPU",
        )
    if trials < 1:
        raise ConfigError(f"expected at least 1 trial, got {trials}", key="--trials", fix="e.g. --trials 4")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"'cuda' but torch {torch.__version__} sees no CUDA device",
            key="--device",
            fix="run it where a GPU is visible with a CUDA build of torch, or pass --device cpu",
        )
    return device != "cpu" and torch.cuda.is_available()


def sizes_for(cuda: bool, args: argparse.Namespace) -> Sizes:
    base = GPU_SIZES if cuda else CPU_SIZES
    return Sizes(args.steps or base.steps, args.pack_steps or base.pack_steps, base.log_every, base.fixed)


def absolute_pythonpath() -> None:
    """PYTHONPATH=platform works for this process only: the dry-run subprocess runs in the work folder, and Ray's
    workers in Ray's own, so every entry is made absolute for them."""
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if entries:
        os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in entries)


def run_flat(sizes: Sizes, steps: int, cuda: bool) -> dict[str, Any]:
    """One GAN run on ring8: `steps` steps, reports every log window, one evaluation at the end."""
    return {
        "family": "gan",
        "data.name": "ring8",
        "train.steps": steps,
        "train.log_every": sizes.log_every,
        "eval.every": steps,
        "train.device": "auto" if cuda else "cpu",
        **sizes.fixed,
    }


def study_yaml(sizes: Sizes, trials: int, cuda: bool) -> str:
    """The dry run's study: `trials` GAN trials that all train stably (two safe learning rates, random search)."""
    flat = run_flat(sizes, sizes.steps, cuda)
    data = {k[5:]: v for k, v in flat.items() if k.startswith("data.")}
    fixed = {
        k: v
        for k, v in flat.items()
        if k.split(".")[0] not in ("family", "data") and k not in ("train.steps", "eval.every")
    }  # the budget sets these two
    lines = [
        f"study: {STUDY}",
        "family: gan",
        f"data: {json.dumps({'name': 'ring8', **data})}",
        "objectives: [{metric: quality.modes, mode: max}]",
        f"budget: {{trials: {trials}, steps: {sizes.steps}, eval_every: {sizes.steps}}}",
        f"dry_run: {{trials: {trials}, steps: {sizes.steps}, eval_every: {sizes.steps}}}",
        "search: {algorithm: random, seed: 0}",
        "resources: {cpus_per_trial: 1}",
        f"fixed: {json.dumps(fixed)}",
        "space:",
        "  optim.lr_g: {choice: [1.0e-4, 2.0e-4]}",
        "  optim.lr_d: {choice: [1.0e-4, 2.0e-4]}",
    ]
    return "\n".join(lines) + "\n"


def say(text: str) -> None:
    print(text, flush=True)


def guarded(name: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one check; an exception fails that check with its reason instead of hiding the others' figures."""
    start = time.perf_counter()
    say(f"[{name}] ...")
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - any failure is this check's outcome, reported in the JSON
        result = {"ok": False, "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
    result["check_s"] = time.perf_counter() - start
    say(f"[{name}] {'ok' if result['ok'] else 'FAILED: ' + result['reason']} ({result['check_s']:.0f} s)")
    return result


# ---- 1. the dry run through the CLI ---------------------------------------------------------------------------


def stream(cmd: list[str], cwd: Path) -> tuple[int, list[str]]:
    """Run `cmd`, showing its output indented as it comes; returns its exit status and its lines."""
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            say(f"    {lines[-1]}")
    return proc.returncode, lines


def check_dry_run(work: Path, sizes: Sizes, cuda: bool, share: float, trials: int) -> dict[str, Any]:
    import pyarrow.dataset as ds

    study, out = work / "study.yaml", work / "dry_run"
    study.write_text(study_yaml(sizes, trials, cuda))
    share_option = ["--set", f"resources.gpus_per_trial={share:g}"] if cuda else []  # CPU: train.device=cpu, no GPU
    cmd = [sys.executable, "-m", "genbench", "dry-run", str(study), "--out", str(out), *share_option]
    say(f"  {' '.join(cmd[1:])}")
    code, lines = stream(cmd, work)
    plan = next((line for line in lines if line.startswith("Resources:")), "")
    if code != 0:
        return {"ok": False, "reason": f"genbench dry-run exited {code}: {lines[-1] if lines else ''}", "plan": plan}
    rows = ds.dataset(out / "trials", format="parquet").to_table().to_pylist()
    print_rows(rows)
    at_once = most_at_once(rows)
    say(
        f"  at most {at_once} trials trained at once"
        + (f" (a share of {share:g} packs {int(1 / share)} per GPU)" if cuda else "")
    )
    problems = row_problems(rows, trials, cuda, share)
    return {
        "ok": not problems,
        "reason": "; ".join(problems),
        "command": " ".join(cmd[1:]),
        "plan": plan,
        "trials_at_once": at_once,
        "rows": [
            {"trial_id": r["trial_id"], **{k: r.get(k) for k in ROW_COLUMNS}, "error": r.get("error", "")} for r in rows
        ],
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    say(
        f"  {'trial':<10} {'status':<10} {'cost.device':<26} {'gpu_share':>9} {'visible':>8} {'device_s':>9} "
        f"{'wall_s':>7}"
    )
    for r in sorted(rows, key=lambda r: r["trial_id"]):
        say(
            f"  {r['trial_id'][-10:]:<10} {r['status']:<10} {r.get('cost.device')!s:<26} "
            f"{r.get('cost.gpu_share', math.nan):9.2f} {r.get('cost.visible_devices')!r:>8} "
            f"{r.get('cost.device_s', math.nan):9.1f} {r.get('cost.wall_s', math.nan):7.1f}"
        )


def most_at_once(rows: list[dict[str, Any]]) -> int:
    """The most trials whose runs overlapped in time (rows' start and end times)."""
    events = sorted(
        [(r["start_time"], 1) for r in rows if r.get("start_time")]
        + [(r["end_time"], -1) for r in rows if r.get("start_time") and r.get("end_time")],
        key=lambda e: (e[0], e[1]),
    )
    live = best = 0
    for _, change in events:
        live += change
        best = max(best, live)
    return best


def row_problems(rows: list[dict[str, Any]], trials: int, cuda: bool, share: float) -> list[str]:
    """What is wrong with the dry run's rows: a missing or unfinished trial, a trial on the wrong device."""
    problems = [f"{len(rows)} rows for {trials} trials"] if len(rows) != trials else []
    for r in rows:
        name, device, held = r["trial_id"], str(r.get("cost.device")), r.get("cost.gpu_share") or 0.0
        visible = r.get("cost.visible_devices")
        if r["status"] != "completed":
            problems.append(f"{name} {r['status']}: {r.get('error', '')}")
        if cuda and held > 0 and not device.startswith("cuda"):
            problems.append(f"{name} held {held:g} GPU but trained on {device}")
        elif cuda and (held != share or not visible):
            problems.append(f"{name} asked for {share:g} GPU; its row says {held:g} GPU, visible {visible!r}")
        elif not cuda and (device != "cpu" or held != 0 or visible != ""):
            problems.append(f"{name} should be a CPU trial; its row says {device}, {held:g} GPU, visible {visible!r}")
    return problems


# ---- 2. packing: two trials on one GPU against one alone --------------------------------------------------------


class Barrier:
    """Holds the packed runs until both processes are up (a fresh worker imports torch and Ray Tune for seconds), so
    that their timed windows overlap: the pair's throughput is only meaningful while both train."""

    def __init__(self, count: int) -> None:
        self.count, self.arrived = count, 0

    def arrive(self) -> None:
        self.arrived += 1

    def ready(self) -> bool:
        return self.arrived >= self.count


def timed_run(flat: dict[str, Any], share: float, barrier: Any = None) -> dict[str, Any]:
    """A trial's run in a Ray task: the device Ray assigned, and the time of every report without an evaluation."""
    import ray

    from genbench.sweep.trainable import ray_assignment
    from genbench.train.run import run

    marks: list[tuple[int, float]] = []

    def report(step: int, values: dict[str, float]) -> None:  # after the window's host sync: its GPU work is done
        if not any(k.startswith("eval.") for k in values):  # the last report carries the evaluation's time
            marks.append((step, time.time()))  # wall clock: two processes' windows are compared

    assignment = ray_assignment(share)
    if barrier is not None:
        ray.get(barrier.arrive.remote())
        while not ray.get(barrier.ready.remote()):
            time.sleep(0.02)
    row = run(flat, report, assignment=assignment)
    return {
        "status": row["status"],
        "error": row.get("error", ""),
        "device": row["cost.device"],
        "gpu_share": row["cost.gpu_share"],
        "visible_devices": row["cost.visible_devices"],
        "wall_s": row["cost.wall_s"],
        "marks": marks,
    }


def steady(run: dict[str, Any], rows_per_step: int) -> dict[str, Any]:
    """Training samples/s between the run's first and last report (the first window holds start-up)."""
    figures = {k: v for k, v in run.items() if k != "marks"}
    if len(run["marks"]) < 2:  # a run that failed or diverged early: run_problems says why
        return {**figures, "train_samples_per_s": math.nan, "window": (math.nan, math.nan)}
    (first, t0), (last, t1) = run["marks"][0], run["marks"][-1]
    return {**figures, "train_samples_per_s": (last - first) * rows_per_step / (t1 - t0), "window": (t0, t1)}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The share of the two timed windows' span during which both ran (NaN without both windows)."""
    both = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return both / (max(a[1], b[1]) - min(a[0], b[0])) if all(map(math.isfinite, (*a, *b))) else math.nan


def check_packing(sizes: Sizes, cuda: bool, share: float) -> dict[str, Any]:
    import ray

    from genbench.config import from_flat

    flat = run_flat(sizes, sizes.pack_steps, cuda)
    rows_per_step = sizes.fixed["train.batch_size"] * from_flat(flat).model.d_steps
    task = ray.remote(max_calls=1)(timed_run)  # a fresh process per run, as a new trial's; its GPU memory freed after
    alone_share, pair_share = (1.0, share) if cuda else (0.0, 0.0)
    say(f"  one run alone ({alone_share:g} GPU), {sizes.pack_steps} steps ...")
    alone = steady(ray.get(task.options(num_cpus=1, num_gpus=alone_share).remote(flat, alone_share)), rows_per_step)
    say(f"  two runs at once ({pair_share:g} GPU each) ...")
    barrier = ray.remote(num_cpus=0)(Barrier).remote(2)
    pair = [
        steady(r, rows_per_step)
        for r in ray.get(
            [task.options(num_cpus=1, num_gpus=pair_share).remote(flat, pair_share, barrier) for _ in range(2)]
        )
    ]
    total = sum(r["train_samples_per_s"] for r in pair)
    ratio = total / alone["train_samples_per_s"] if alone["train_samples_per_s"] > 0 else math.nan
    both = overlap(pair[0]["window"], pair[1]["window"])
    for name, r in [("alone", alone), ("packed 1", pair[0]), ("packed 2", pair[1])]:
        say(
            f"  {name:<9} {r['train_samples_per_s']:10.0f} samples/s on {r['device']} (share {r['gpu_share']:g}, "
            f"visible {r['visible_devices']!r})"
        )
    say(
        f"  packed pair {total:.0f} samples/s / alone {alone['train_samples_per_s']:.0f} = x{ratio:.2f} "
        f"(their timed windows overlapped {both:.0%})"
    )
    problems = [p for r in [alone, *pair] for p in run_problems(r, cuda)]
    if not math.isfinite(ratio):
        problems.append(f"no packing ratio (alone {alone['train_samples_per_s']}, pair {total})")
    return {
        "ok": not problems,
        "reason": "; ".join(problems),
        "steps": sizes.pack_steps,
        "rows_per_step": rows_per_step,
        "alone": alone,
        "packed": pair,
        "packed_total_samples_per_s": total,
        "alone_samples_per_s": alone["train_samples_per_s"],
        "ratio": ratio,
        "overlap": both,
    }


def run_problems(r: dict[str, Any], cuda: bool) -> list[str]:
    problems = [f"a run {r['status']}: {r['error']}"] if r["status"] != "completed" else []
    if cuda != r["device"].startswith("cuda"):
        problems.append(f"a run holding {r['gpu_share']:g} GPU trained on {r['device']}")
    return problems


# ---- 3. one Ray Train worker ------------------------------------------------------------------------------------


def check_ray_train(sizes: Sizes, cuda: bool, work: Path) -> dict[str, Any]:
    from genbench.train.ray_worker import Workers, run_distributed

    workers = Workers(count=1, cpus=1, gpus=1.0 if cuda else 0.0, max_failures=0)
    backend = "nccl" if workers.gpus else "gloo"  # Ray Train's TorchConfig choice for workers with and without GPUs
    say(f"  1 worker x {workers.gpus:g} GPU ({backend}), {sizes.steps} steps ...")
    start = time.perf_counter()
    row, history = run_distributed(run_flat(sizes, sizes.steps, cuda), workers, str(work / "ray_train"))
    wall = time.perf_counter() - start
    figures = {
        "status": row.get("status"),
        "steps": row.get("steps"),
        "device": row.get("cost.device"),
        "gpu_share": row.get("cost.gpu_share"),
        "visible_devices": row.get("cost.visible_devices"),
        "train_path": row.get("train_path"),
        "wall_s": row.get("cost.wall_s"),
        "driver_wall_s": wall,
        "backend": backend,
        "history_rows": len(history),
        "error": row.get("error", ""),
    }
    say(
        f"  {figures['status']}, {figures['steps']} steps on {figures['device']} ({figures['train_path']}), "
        f"worker wall {figures['wall_s'] or math.nan:.1f} s, {wall:.1f} s with Ray Train's start-up"
    )
    problems = [] if figures["status"] == "completed" else [f"{figures['status']}: {figures['error']}"]
    if figures["status"] == "completed" and figures["steps"] != sizes.steps:
        problems.append(f"{figures['steps']} steps of {sizes.steps}")
    if figures["status"] == "completed" and cuda != str(figures["device"]).startswith("cuda"):
        problems.append(f"a worker holding {workers.gpus:g} GPU trained on {figures['device']}")
    return {"ok": not problems, "reason": "; ".join(problems), **figures}


@contextmanager
def local_ray() -> Iterator[None]:
    """A private local Ray for checks 2 and 3, with the dashboard Ray Train's controller watches itself through."""
    import ray

    from genbench.sweep.connect import start_local_ray

    start_local_ray(dashboard=True)
    try:
        yield
    finally:
        ray.shutdown()


def ray_checks(sizes: Sizes, cuda: bool, share: float, work: Path) -> dict[str, dict[str, Any]]:
    try:
        with local_ray():
            return {
                "packing": guarded("packing", lambda: check_packing(sizes, cuda, share)),
                "ray_train": guarded("ray_train", lambda: check_ray_train(sizes, cuda, work)),
            }
    except Exception as exc:  # noqa: BLE001 - Ray did not start: both checks fail with its reason
        reason = f"the local Ray did not start: {type(exc).__name__}: {exc}"
        return {"packing": {"ok": False, "reason": reason}, "ray_train": {"ok": False, "reason": reason}}


# ---- the command ------------------------------------------------------------------------------------------------


@contextmanager
def work_folder(given: str) -> Iterator[Path]:
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        yield Path(given).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="gpu-sweep-check-") as folder:
        yield Path(folder)


def header(cuda: bool) -> dict[str, Any]:
    import ray

    return {
        "device": f"cuda:0 ({torch.cuda.get_device_name(0)})" if cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "ray": ray.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "gpus": torch.cuda.device_count(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cuda = use_cuda(args.device, args.share, args.trials)
    sizes = sizes_for(cuda, args)
    absolute_pythonpath()
    summary = header(cuda)
    say(
        f"gpu_sweep_check: {summary['device']}, torch {summary['torch']}, ray {summary['ray']}, "
        f"{summary['cpus']} CPUs, {summary['gpus']} GPUs; {args.trials} dry-run trials x {sizes.steps} steps, "
        f"packing runs of {sizes.pack_steps} steps"
    )
    start = time.perf_counter()
    with work_folder(args.work) as work:
        checks = {"dry_run": guarded("dry_run", lambda: check_dry_run(work, sizes, cuda, args.share, args.trials))}
        checks.update(ray_checks(sizes, cuda, args.share, work))
    failures = [f"{name}: {c['reason']}" for name, c in checks.items() if not c["ok"]]
    report = {
        **summary,
        "ok": not failures,
        "failures": failures,
        "wall_s": time.perf_counter() - start,
        "sizes": {
            "steps": sizes.steps,
            "pack_steps": sizes.pack_steps,
            "share": args.share if cuda else 0.0,
            "trials": args.trials,
            "fixed": sizes.fixed,
        },
        "checks": checks,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2, default=str)
    say("All checks passed" if not failures else "FAILED:\n  " + "\n  ".join(failures))
    say(f"Results: {args.out}")
    return 0 if not failures else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GenbenchError as exc:  # a bad option: one line, no traceback
        print(f"gpu_sweep_check: error: {exc}", file=sys.stderr)
        sys.exit(2)
