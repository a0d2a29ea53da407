"""Cases 'sweep_overhead' and 'concurrency': a local Ray Tune sweep against plain Optuna, 1 vs 2 trials at once."""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, Target, spread

OVERHEAD_TARGET_MS = 50.0  # per trial, after Ray has started, on a 2-core CPU
CONCURRENCY_TARGET = 1.8  # throughput of 2 concurrent compute-bound trials over 1, on 2 cores
TINY = {
    "gan.g_width": 16,
    "gan.d_width": 16,
    "gan.g_depth": 2,
    "gan.d_depth": 2,
    "train.batch_size": 64,
    "eval.n_samples": 200,
    "data.n_train": 2000,
    "data.n_test": 500,
}  # trials that train in tens of ms


def study_file(folder: str, name: str, trials: int, steps: int, concurrent: int, fixed: dict[str, Any]) -> Any:
    """A GAN study on grid25 searching two learning rates, written to `folder` and loaded like any study file."""
    from genbench.sweep.spec import load_study

    lines = [
        f"study: {name}",
        "family: gan",
        "data: {name: grid25}",
        "objectives: [{metric: quality.modes, mode: max}]",
        f"budget: {{trials: {trials}, steps: {steps}, eval_every: {steps}}}",
        f"dry_run: {{trials: {trials}, steps: {steps}, eval_every: {steps}}}",
        f"search: {{algorithm: tpe, seed: 0, max_concurrent: {concurrent}}}",
        "resources: {cpus_per_trial: 1}",
        "fixed:",
        *[f"  {k}: {v}" for k, v in fixed.items()],
        "space:",
        "  optim.lr_g: {float: [1.0e-4, 1.0e-3], log: true}",
        "  optim.lr_d: {float: [1.0e-4, 1.0e-3], log: true}",
    ]
    path = Path(folder) / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_study(str(path))


def tune_rows(study: Any, out: str) -> tuple[list[dict[str, Any]], float]:
    """Run the study through genbench's Ray Tune sweep on a freshly started local Ray; its rows and Ray's start."""
    import ray

    from genbench.results.store import ResultsStore
    from genbench.sweep.connect import start_local_ray
    from genbench.sweep.tuner import run_sweep

    start = time.perf_counter()
    start_local_ray()
    ray_start_s = time.perf_counter() - start
    try:
        run_sweep(study, study.budget, out, f"bench {study.name}")
    finally:
        if ray.is_initialized():
            ray.shutdown()
    rows = ResultsStore(out).read("trials").to_pylist()
    for row in rows:  # the store keeps timestamps; run() returns epoch seconds
        row.update({k: row[k].timestamp() for k in ("start_time", "end_time") if hasattr(row[k], "timestamp")})
    return rows, ray_start_s


def optuna_rows(study: Any) -> list[dict[str, Any]]:
    """The same objective under plain Optuna in this process (ask/tell around genbench's run())."""
    import optuna

    from genbench.sweep.space import DefineByRun
    from genbench.train.run import run

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    define = DefineByRun(study.space, study.run_settings(study.budget))
    search = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    rows = []
    for _ in range(study.budget.trials):
        trial = search.ask()
        rows.append(run(define(trial)))
        value = rows[-1].get("quality.modes", math.nan)
        search.tell(trial, value if math.isfinite(value) else 0.0)
    return rows


def gaps_s(rows: list[dict[str, Any]]) -> list[float]:
    """Seconds between one trial's training ending and the next one's starting, trials run one at a time."""
    ordered = sorted(rows, key=lambda r: r["start_time"])
    return [b["start_time"] - a["end_time"] for a, b in itertools.pairwise(ordered)]


def overhead_runs(ctx: Context, trials: int) -> dict[str, Any]:
    """The same tiny study one trial at a time: plain Optuna in this process, then Ray Tune (Ray's start apart)."""
    with tempfile.TemporaryDirectory(prefix="genbench-bench-") as folder:
        study = study_file(folder, "bench_overhead", trials, 20, 1, TINY)
        ctx.say(f"  {trials} tiny trials (20 steps) one at a time: plain Optuna in this process, then Ray Tune")
        start = time.perf_counter()
        plain = optuna_rows(study)
        optuna_wall, start = time.perf_counter() - start, time.perf_counter()
        tuned, ray_start_s = tune_rows(study, str(Path(folder) / "out"))
        sweep_wall = time.perf_counter() - start - ray_start_s
    return {
        "rows": {"ray_tune": tuned, "optuna": plain},
        "wall_s": {"ray_tune": sweep_wall, "optuna": optuna_wall},
        "ray_start_s": ray_start_s,
    }


@CASES.register(
    "sweep_overhead",
    "per-trial scheduling overhead of a local Ray Tune sweep vs plain Optuna (target <= 50 ms per trial)",
)
def sweep_overhead_case(ctx: Context) -> CaseResult:
    runs = overhead_runs(ctx, ctx.pick(12, 30))
    rows, walls = runs["rows"], runs["wall_s"]
    gap = {name: spread(gaps_s(r)) for name, r in rows.items()}
    per_trial = {name: (walls[name] - sum(r["cost.wall_s"] for r in rows[name])) / len(rows[name]) for name in rows}
    lines = [
        f"gap between trials, Ray Tune:    {_ms(gap['ray_tune'])}",
        f"gap between trials, plain Optuna: {_ms(gap['optuna'])}",
        f"ratio of medians Ray Tune / Optuna: {gap['ray_tune'].median / max(gap['optuna'].median, 1e-9):.0f}x",
        f"whole sweep minus training, per trial (with Tune's set-up, first trial process, summary; Ray's "
        f"{runs['ray_start_s']:.1f} s start excluded): Ray Tune {per_trial['ray_tune'] * 1e3:.0f} ms, "
        f"plain Optuna {per_trial['optuna'] * 1e3:.1f} ms",
    ]
    data = {
        "trials": len(rows["optuna"]),
        "gap_s": gap,
        "ray_start_s": runs["ray_start_s"],
        "sweeps_wall_s": walls,
        "per_trial_incl_fixed_s": per_trial,
    }
    return CaseResult(
        lines, data, [Target("Ray Tune per-trial overhead ms", gap["ray_tune"].median * 1e3, OVERHEAD_TARGET_MS, "<=")]
    )


def _ms(s: Any) -> str:
    return (
        f"median {s.median * 1e3:.1f} ms (IQR {s.q1 * 1e3:.1f}-{s.q3 * 1e3:.1f}, min-max {s.low * 1e3:.1f}-"
        f"{s.high * 1e3:.1f}, n={s.n})"
    )


def throughput(rows: list[dict[str, Any]]) -> float:
    """Training steps per second over the span from the first trial's start to the last one's end."""
    span = max(r["end_time"] for r in rows) - min(r["start_time"] for r in rows)
    return sum(r["steps"] for r in rows) / span


def concurrent_sweeps(ctx: Context, trials: int, steps: int, pairs: int) -> dict[str, dict[int, list[float]]]:
    """Steps/s and CPU seconds per step of the same sweep run 1 and 2 trials at a time, the order alternated."""
    out: dict[str, dict[int, list[float]]] = {"steps_per_s": {1: [], 2: []}, "cpu_s_per_step": {1: [], 2: []}}
    with tempfile.TemporaryDirectory(prefix="genbench-bench-") as folder:
        for p in range(pairs):
            for concurrent in (1, 2) if p % 2 == 0 else (2, 1):
                study = study_file(
                    folder, f"bench_c{concurrent}_{p}", trials, steps, concurrent, {"train.batch_size": 256}
                )
                ctx.say(
                    f"  {trials} trials x {steps} steps (GAN 3x128 MLPs, batch 256, 1 torch thread each), "
                    f"{concurrent} at a time"
                )
                rows, _ = tune_rows(study, str(Path(folder) / study.name))
                out["steps_per_s"][concurrent].append(throughput(rows))
                cpu_s = sum(r["cost.device_s"] for r in rows)
                out["cpu_s_per_step"][concurrent].append(cpu_s / sum(r["steps"] for r in rows))
    return out


@CASES.register("concurrency", "2 concurrent compute-bound trials vs 1 on this machine's cores (target >= 1.8x)")
def concurrency_case(ctx: Context) -> CaseResult:
    trials, steps, pairs = ctx.pick((4, 300, 1), (6, 600, 2))
    runs = concurrent_sweeps(ctx, trials, steps, pairs)
    rates, cpu = runs["steps_per_s"], runs["cpu_s_per_step"]
    ratio = spread([two / one for one, two in zip(rates[1], rates[2])])
    efficiency = spread([two / one for one, two in zip(cpu[1], cpu[2])])
    lines = [
        f"steps/s, 1 trial at a time: {spread(rates[1]).text('.0f')}",
        f"steps/s, 2 trials at a time: {spread(rates[2]).text('.0f')}",
        f"throughput 2 / 1: {ratio.text('.2f')}",
        f"CPU seconds per step, 2 at a time / 1 at a time: {efficiency.text('.2f')} "
        "(above 1: the trials slow each other down beyond sharing the cores)",
        f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}",
    ]
    data = {"trials": trials, "steps": steps, **runs, "ratio": ratio, "cpu_per_step_ratio": efficiency}
    return CaseResult(lines, data, [Target("throughput 2 concurrent / 1", ratio.median, CONCURRENCY_TARGET, ">=")])
