"""Trials that TPE and random search each need to reach a quality target on a study, over seeded repeats."""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import os
import platform as host
import sys
import time
from pathlib import Path
from typing import Any

from genbench.bench.search import censored_stats, objective_value, reached, trials_to_target
from genbench.shipped import STUDIES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STUDY = STUDIES / "gan_stability.yaml"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "search_compare.json"
ALGORITHMS = ("tpe", "random")
MAX_PROCESSES = 2  # the machine is shared: never more than two training processes

Job = tuple[str, int]  # (algorithm, repeat)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", default=str(DEFAULT_STUDY), help="study file (default: gan_stability.yaml)")
    parser.add_argument("--repeats", type=int, default=5, help="seeded repeats per algorithm")
    parser.add_argument("--first-seed", type=int, default=0, help="sampler seed of the first repeat")
    parser.add_argument("--max-trials", type=int, default=30, help="trials per repeat before giving up")
    parser.add_argument("--target", type=float, default=20.0, help="value of the first objective to reach")
    parser.add_argument("--steps", type=int, default=None, help="train.steps per trial (default: the dry run's)")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated: tpe,random")
    parser.add_argument("--processes", type=int, default=2, help=f"training processes (at most {MAX_PROCESSES})")
    parser.add_argument(
        "--also",
        default="",
        help="comma-separated easier targets also tabulated from the same "
        "trials (each repeat stops only at --target, so they are exact)",
    )
    parser.add_argument("--full", action="store_true", help="run every repeat to --max-trials, even after the target")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="every trial, as .json (with the summary) or .csv")
    args = parser.parse_args(argv)
    args.algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if any(a not in ALGORITHMS for a in args.algorithms) or not args.algorithms:
        parser.error(f"--algorithms: choose from {', '.join(ALGORITHMS)}")
    if not 1 <= args.processes <= MAX_PROCESSES:
        parser.error(f"--processes must be 1 or {MAX_PROCESSES}")
    if args.repeats < 1 or args.max_trials < 1:
        parser.error("--repeats and --max-trials must be >= 1")
    args.also = [float(t) for t in args.also.split(",") if t.strip()]
    return args


def check_targets(args: argparse.Namespace, mode: str) -> None:
    """Extra targets must be reached no later than --target, or the stop at --target would hide them."""
    harder = [t for t in args.also if (t > args.target if mode == "max" else t < args.target)]
    if harder and not args.full:
        sys.exit(
            f"search_compare: error: --also {harder[0]:g} is harder than --target {args.target:g}; "
            "give the hardest as --target, or add --full"
        )


def trial_factory(study_path: str, steps: int | None) -> tuple[Any, str, str]:
    """The study's define-by-run function at its dry-run budget (steps overridden), its metric and direction."""
    from genbench.sweep.space import DefineByRun
    from genbench.sweep.spec import load_study

    study = load_study(study_path)
    constants = study.run_settings(study.dry_run)
    if steps is not None:
        constants["train.steps"] = steps
        constants["eval.every"] = min(constants["eval.every"], steps)
    metric, mode = study.objectives[0]
    return DefineByRun(study.space, constants), metric, mode


def make_sampler(algorithm: str, seed: int) -> Any:
    import optuna

    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def run_job(job: Job, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One repeat of one algorithm: ask/tell plain Optuna, each trial trained by genbench's run()."""
    import optuna

    from genbench.train.run import run

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    algorithm, repeat = job
    define, metric, mode = trial_factory(settings["study"], settings["steps"])
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        sampler=make_sampler(algorithm, settings["first_seed"] + repeat),
    )
    records: list[dict[str, Any]] = []
    best = -math.inf if mode == "max" else math.inf
    for number in range(1, settings["max_trials"] + 1):
        trial = study.ask()
        flat = define(trial)
        start = time.perf_counter()
        row = run(flat)
        wall = time.perf_counter() - start
        value = objective_value(row, metric, mode)
        study.tell(trial, value)
        best = max(best, value) if mode == "max" else min(best, value)
        records.append(
            {
                "algorithm": algorithm,
                "repeat": repeat,
                "trial": number,
                "params": trial.params,
                "status": row.get("status", "failed"),
                "value": value,
                "best": best,
                "wall_s": round(wall, 2),
            }
        )
        print(progress_line(records[-1], settings), flush=True)
        if reached(best, settings["target"], mode) and not settings["full"]:
            break
    return records


def progress_line(rec: dict[str, Any], settings: dict[str, Any]) -> str:
    p = rec["params"]
    variant = f"{p.get('gan.loss', '?')}/{p.get('gan.penalty', '?')}/sn={p.get('gan.spectral_norm', '?')}"
    return (
        f"[{rec['algorithm']:>6} r{rec['repeat']}] trial {rec['trial']:>2}/{settings['max_trials']}  "
        f"value {rec['value']:>5g}  best {rec['best']:>5g}  {rec['status']:<9} {rec['wall_s']:6.1f} s  {variant}"
    )


def summarise(records: list[dict[str, Any]], args: argparse.Namespace, target: float, mode: str) -> dict[str, Any]:
    """Per algorithm, the censored trials-to-target statistics of `target`; the ratio of the medians."""
    summary: dict[str, Any] = {"target": target}
    for algorithm in args.algorithms:
        counts = [
            trials_to_target([r for r in records if r["algorithm"] == algorithm and r["repeat"] == k], target, mode)
            for k in range(args.repeats)
        ]
        summary[algorithm] = censored_stats(counts, args.max_trials)
    if {"tpe", "random"} <= set(summary):
        tpe, rnd = summary["tpe"], summary["random"]
        summary["ratio_median_random_over_tpe"] = rnd["median"] / tpe["median"]
        summary["ratio_censored"] = tpe["median_censored"] or rnd["median_censored"]
    return summary


def fmt(value: float, censored: bool, max_trials: int) -> str:
    """A statistic of censored counts: exact, a lower bound ('>=x'), or beyond max-trials ('>max')."""
    if not censored:
        return f"{value:g}"
    return f">{max_trials}" if value > max_trials else f">={value:g}"


def table(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """Per algorithm: trials-to-target of each repeat, median, mean and how many repeats reached the target."""
    head = ["algorithm"] + [f"r{k}" for k in range(args.repeats)] + ["median", "mean", "reached"]
    lines = [head]
    for algorithm in args.algorithms:
        s = summary[algorithm]
        cells = [str(c) if c is not None else f">{args.max_trials}" for c in s["trials_to_target"]]
        lines.append(
            [
                algorithm,
                *cells,
                fmt(s["median"], s["median_censored"], args.max_trials),
                fmt(round(s["mean"], 1), s["mean_censored"], args.max_trials),
                f"{s['reached']}/{s['repeats']}",
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in lines)
    if "ratio_median_random_over_tpe" in summary:
        ratio = f"{summary['ratio_median_random_over_tpe']:.2f}"
        note = " (a median is censored: not a measured ratio)" if summary["ratio_censored"] else ""
        text += f"\nmedian(random) / median(tpe) = {ratio}{note}"
    return text


def write_out(path: Path, records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Atomically write the trials (and, for .json, the settings and summary) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ordered = sorted(records, key=lambda r: (r["algorithm"], r["repeat"], r["trial"]))
    if path.suffix == ".csv":
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(
                f, fieldnames=["algorithm", "repeat", "trial", "status", "value", "best", "wall_s", "params"]
            )
            writer.writeheader()
            writer.writerows({**r, "params": json.dumps(r["params"], sort_keys=True)} for r in ordered)
    else:
        head = json.dumps(meta, indent=1)[:-2]  # the settings and summary readable, then one line per trial
        rows = ",\n".join(json.dumps(r, separators=(",", ":")) for r in ordered)
        tmp.write_text(f'{head},\n "trials": [\n{rows}\n ]\n}}\n')
    tmp.replace(path)


def versions() -> dict[str, str]:
    import optuna
    import torch

    import genbench

    return {
        "genbench": genbench.__version__,
        "torch": str(torch.__version__),
        "optuna": optuna.__version__,
        "python": host.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    define, metric, mode = trial_factory(args.study, args.steps)
    check_targets(args, mode)
    settings = {
        "study": args.study,
        "steps": args.steps,
        "first_seed": args.first_seed,
        "max_trials": args.max_trials,
        "target": args.target,
        "full": args.full,
    }
    meta: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(argv),
        "settings": {
            "study": os.path.relpath(args.study, ROOT),
            "metric": metric,
            "mode": mode,
            "target": args.target,
            "also": args.also,
            "repeats": args.repeats,
            "max_trials": args.max_trials,
            "steps": define.constants["train.steps"],
            "eval_every": define.constants["eval.every"],
            "threads_per_trial": define.constants["train.threads"],
            "processes": args.processes,
            "stop_at_target": not args.full,
            "sampler_seeds": [args.first_seed + k for k in range(args.repeats)],
        },
        "machine": {"cpus": os.cpu_count(), "system": host.platform()},
        "versions": versions(),
    }
    print(
        f"{metric} >= {args.target:g}" if mode == "max" else f"{metric} <= {args.target:g}",
        f"| {args.repeats} repeats x {', '.join(args.algorithms)} | at most {args.max_trials} trials each |",
        f"{meta['settings']['steps']} steps per trial | {args.processes} processes",
        flush=True,
    )
    jobs = [(a, k) for k in range(args.repeats) for a in args.algorithms]  # paired: both algorithms per repeat
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    out = Path(args.out).resolve()
    with mp.get_context("spawn").Pool(args.processes) as pool:
        for job_records in pool.imap_unordered(_run_job_star, [(job, settings) for job in jobs]):
            records.extend(job_records)
            meta["wall_s"] = round(time.perf_counter() - start, 1)
            write_out(out, records, meta)  # a stopped benchmark still leaves every finished repeat
    summaries = [summarise(records, args, t, mode) for t in (args.target, *args.also)]
    meta.update({"wall_s": round(time.perf_counter() - start, 1), "summary": summaries})
    write_out(out, records, meta)
    for summary in summaries:
        print(
            f"\ntrials to reach {metric} {'>=' if mode == 'max' else '<='} {summary['target']:g} "
            f"(>{args.max_trials}: not reached within {args.max_trials} trials)"
        )
        print(table(summary, args))
    print(f"\n{len(records)} trials in {meta['wall_s'] / 60:.1f} min")
    print(f"Results: {out}")
    return 0


def _run_job_star(item: tuple[Job, dict[str, Any]]) -> list[dict[str, Any]]:
    return run_job(*item)


if __name__ == "__main__":
    sys.exit(main())
