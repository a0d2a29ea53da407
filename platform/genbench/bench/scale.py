"""Case 'scale': how a study's per-trial bookkeeping, results reads, summary and dashboards grow with its trials.

The driver's own per-trial work runs for real, without Ray: the searcher (Ray Tune's OptunaSearch over the
study's Optuna journal), the results writer callback (`make_writer`: rows, history, the Parquet parts) and the
progress lines, trial after trial. The trials themselves are not trained: each reports a short history and a
final row drawn from a seeded generator (timing data, not results), so 10,000 of them fit in minutes.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genbench.bench.harness import CASES, CaseResult, Context, Target

BOOKKEEPING_RATIO = 2.0  # the issue's goal: per-trial bookkeeping at n trials within 2x of 100 trials'
DASHBOARD_S = 60.0  # and dashboards built within a minute
WARM_UP = 20  # trials of a study run first and thrown away
LOSSES = ("non_saturating", "wasserstein", "hinge", "least_squares")
STUDY: dict[str, Any] = {
    "study": "scale",
    "family": "gan",
    "data": {"name": "ring8"},
    "objectives": [{"metric": "quality.modes", "mode": "max"}],
    "success": {"metric": "quality.modes", "at_least": 6},
    "budget": {"trials": 100, "steps": 30, "eval_every": 10},
    "search": {"algorithm": "random", "seed": 0},
    "space": {
        "gan.loss": {"choice": list(LOSSES)},
        "optim.lr_g": {"float": [1.0e-5, 1.0e-2], "log": True},
        "optim.lr_d": {"float": [1.0e-5, 1.0e-2], "log": True},
    },
}


@dataclass
class FakeTrial:
    """What the writer callback reads of a Tune trial."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] | None = None


def _report(rng: np.random.Generator, steps: int, every: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A trivial trial's history (one row per evaluation) and final report, drawn from `rng`."""
    modes = float(rng.uniform(0, 8))
    history = [
        {"step": s, "seed": 0, "train.loss_d": float(rng.normal(1.2, 0.2)), "eval.modes": modes * s / steps}
        for s in range(every, steps + 1, every)
    ]
    row = {
        "seed": 0,
        "status": "completed" if rng.random() > 0.1 else "diverged",
        "steps": steps,
        "quality.modes": modes,
        "quality.swd": float(rng.uniform(0.05, 1)),
        "stability.oscillation": float(rng.uniform(0, 0.5)),
        "cost.wall_s": float(rng.uniform(1, 3)),
        "cost.device_s": float(rng.uniform(1, 3)),
    }
    return history, {"final": True, "rows": [row], "quality.modes": modes, "stability.success_rate": 1.0}


class Driver:
    """One study's driver-side work without Ray: Ray Tune's OptunaSearch over the study's Optuna journal, the
    results writer callback and the progress lines; `trial()` runs the next trivial trial through them."""

    def __init__(self, study: Any, out: str, trials: int, quiet: Any) -> None:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        from genbench.results.store import ResultsStore
        from genbench.sweep.journal import optuna_storage
        from genbench.sweep.progress import Progress
        from genbench.sweep.records import study_record
        from genbench.sweep.tuner import make_writer

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.store, self.budget, self.count = ResultsStore(out), study.dry_run, 0
        constants = study.run_settings(self.budget)
        self.store.write_study(study_record(study, self.budget, constants))
        self.search = OptunaSearch(
            study.define_by_run(constants),
            metric="quality.modes",
            mode="max",
            sampler=optuna.samplers.RandomSampler(seed=0),
            storage=optuna_storage(self.store),
            study_name=study.name,
        )
        progress = Progress("scale", trials, study.objectives[0], out=quiet, steps=self.budget.steps)
        self.writer = make_writer(study, self.store, progress, 1)
        self.rng = np.random.default_rng(0)

    def trial(self) -> float:
        """The next trivial trial: suggested, started, its history and final row written, told; its seconds."""
        start = time.perf_counter()
        trial = FakeTrial(f"t{self.count:05d}", {})
        trial.config = self.search.suggest(trial.trial_id) or {}
        history, final = _report(self.rng, self.budget.steps, self.budget.eval_every)
        self.writer.on_trial_start(0, [], trial)
        self.writer.on_trial_result(0, [], trial, {"history": history, "step": self.budget.steps})
        trial.last_result = final
        self.writer.on_trial_complete(0, [], trial)
        self.search.on_trial_complete(trial.trial_id, final)
        self.count += 1
        return time.perf_counter() - start


def _study(n: int) -> Any:
    from genbench.sweep.spec import study_from_dict

    budget = {**STUDY["budget"], "trials": n}
    return study_from_dict({**STUDY, "budget": budget, "dry_run": budget})


class Baseline:
    """Trials of 100-trial studies run beside a large study's, one after each of its own: the same disk, load and
    caches at the same moments, so that the ratio of the two says what the large study's size costs a trial. A
    fresh small study starts whenever one has its 100, and runs its first WARM_UP trials (not counted) at once."""

    def __init__(self, root: Path, quiet: Any) -> None:
        self.root, self.quiet, self.made, self.seconds = root, quiet, 0, []  # type: ignore[var-annotated]
        self.driver = self._fresh()

    def _fresh(self) -> Driver:
        self.made += 1
        driver = Driver(_study(100), str(self.root / f"baseline{self.made}"), 100, self.quiet)
        for _ in range(WARM_UP):
            driver.trial()
        return driver

    def trial(self) -> None:
        if self.driver.count == 100:
            self.driver = self._fresh()
        self.seconds.append(self.driver.trial())


def drive(n: int, out: str, root: Path, quiet: Any) -> tuple[list[float], list[float]]:
    """n trivial trials of one study; in its last tenth a baseline trial after each. (its seconds, the baseline's)"""
    driver, baseline = Driver(_study(n), out, n, quiet), Baseline(root / f"base{n}", quiet)
    tail, seconds = max(10, n // 10), []
    for i in range(n):
        seconds.append(driver.trial())
        if i >= n - tail:
            baseline.trial()
    return seconds, baseline.seconds


def measure(n: int, root: Path, quiet: Any) -> dict[str, Any]:
    """Drive n trials, then time a read of the parts, the compaction, a read after it, summary and dashboards."""
    from genbench.dashboards.site import write_dashboards
    from genbench.results.store import ResultsStore
    from genbench.sweep.journal import optuna_storage
    from genbench.sweep.summary import summarise

    study, out = _study(n), str(root / f"n{n}")
    per_trial, baseline = drive(n, out, root, quiet)
    store = ResultsStore(out)
    read_parts_s = _timed(lambda: (store.read("trials"), store.read("history")))
    compact_s = _timed(store.compact_all)
    read_s = _timed(lambda: (store.read("trials"), store.read("history")))
    summary_s = _timed(lambda: summarise(study, study.dry_run, store, optuna_storage(store)))
    dashboard_s = _timed(lambda: write_dashboards(out))
    pages = sorted((Path(out) / "dashboards").glob("*.html"), key=lambda p: p.stat().st_size)
    tail = per_trial[-max(10, n // 10) :]  # the last tenth: what a trial costs once the study is that large
    return {
        "trials": n,
        "bookkeeping_ms": 1000 * float(np.mean(tail)),
        "baseline_ms": 1000 * float(np.mean(baseline)),  # 100-trial studies' trials beside that tenth
        "bookkeeping_mean_ms": 1000 * float(np.mean(per_trial)),
        "read_parts_s": read_parts_s,
        "compact_s": compact_s,
        "read_s": read_s,
        "summary_s": summary_s,
        "summary_kb": os.path.getsize(os.path.join(out, "summary.yaml")) / 1024,
        "dashboard_s": dashboard_s,
        "largest_page": pages[-1].name,
        "largest_page_kb": pages[-1].stat().st_size / 1024,
        "files_after": sum(len(files) for _, _, files in os.walk(out)),
    }


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _line(m: dict[str, Any], base: dict[str, Any]) -> str:
    def r(key: str) -> str:
        return f"{m[key] / base[key]:.2f}x" if base[key] > 0 else "n/a"

    beside = m["bookkeeping_ms"] / m["baseline_ms"]
    return (
        f"{m['trials']:>6,} trials: bookkeeping {m['bookkeeping_ms']:.2f} ms/trial ({beside:.2f}x 100-trial studies' "
        f"{m['baseline_ms']:.2f} beside it; {r('bookkeeping_ms')} the first size's); "
        f"read {m['read_parts_s']:.2f} s as parts, {m['read_s']:.3f} s compacted ({r('read_s')}; compaction "
        f"{m['compact_s']:.2f} s); summary {m['summary_s']:.2f} s, {m['summary_kb']:.0f} kB; dashboards "
        f"{m['dashboard_s']:.1f} s ({r('dashboard_s')}), largest page {m['largest_page']} "
        f"{m['largest_page_kb']:.0f} kB ({r('largest_page_kb')})"
    )


@CASES.register(
    "scale", "studies of 100 to 10,000 trivial trials: per-trial bookkeeping, reads, summary, dashboards (no Ray)"
)
def scale_case(ctx: Context) -> CaseResult:
    sizes = ctx.pick([100, 1000], [100, 1000, 10000])
    ctx.say(f"  {', '.join(f'{n:,}' for n in sizes)} trivial trials through the searcher and the results writer")
    measured = []
    with tempfile.TemporaryDirectory(prefix="genbench-scale-") as tmp, open(os.devnull, "w") as quiet:
        measure(WARM_UP, Path(tmp), quiet)  # imports (Ray Tune, Optuna, sklearn, plotly) and caches, not counted
        for n in sizes:
            measured.append(measure(n, Path(tmp), quiet))
            ctx.say("  " + _line(measured[-1], measured[0]))
    base, last = measured[0], measured[-1]
    lines = [_line(m, base) for m in measured]
    lines.append(
        "not measured here: Ray Tune's own per-trial cost (its controller, trial actors, experiment state); see "
        "docs/performance.md, 'Studies of 10,000 trials'"
    )
    targets = [
        Target(
            f"bookkeeping at {last['trials']:,} / at 100 beside it",
            last["bookkeeping_ms"] / last["baseline_ms"],
            BOOKKEEPING_RATIO,
            "<=",
        ),
        Target(f"dashboards at {last['trials']:,} trials (s)", last["dashboard_s"], DASHBOARD_S, "<="),
    ]
    finite = all(math.isfinite(m["bookkeeping_ms"]) for m in measured)
    return CaseResult(lines, {"sizes": sizes, "measured": measured, "finite": finite}, targets)


RAY_STUDY: dict[str, Any] = {
    "study": "scale_ray",
    "family": "autoregressive",
    "data": {"name": "ring8", "n_train": 500, "n_test": 200},
    "objectives": [{"metric": "quality.modes", "mode": "max"}],
    "search": {"algorithm": "random", "seed": 0, "max_concurrent": 2},
    "resources": {"cpus_per_trial": 1},
    "fixed": {"train.batch_size": 32, "eval.n_samples": 200},
    "space": {"optim.lr": {"float": [1.0e-4, 1.0e-2], "log": True}, "autoregressive.mixtures": {"choice": [2, 3]}},
}  # tests/test_load_ray.py's study: trials of 5 steps


def ray_sweep(n: int, root: Path) -> dict[str, Any]:
    """n trivial trials through the real driver (Ray Tune + OptunaSearch + the writer) on a started local Ray:
    the driver process's CPU seconds and the wall seconds per trial (its Ray workers' CPU is not counted)."""
    import ray

    from genbench.sweep.connect import start_local_ray
    from genbench.sweep.spec import study_from_dict
    from genbench.sweep.tuner import run_sweep

    budget = {"trials": n, "steps": 5, "eval_every": 5}
    study = study_from_dict({**RAY_STUDY, "budget": budget, "dry_run": budget})
    start_local_ray()
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run_sweep(study, study.budget, str(root / f"ray{n}"), f"bench scale_ray {n}")
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        if ray.is_initialized():
            ray.shutdown()
    return {"trials": n, "driver_cpu_ms": 1000 * cpu_s / n, "wall_ms": 1000 * wall_s / n}


@CASES.register("scale_ray", "trivial trials through Ray Tune at two study sizes: the driver's CPU and wall per trial")
def scale_ray_case(ctx: Context) -> CaseResult:
    sizes = ctx.pick([50, 200], [100, 1000])
    measured = []
    with tempfile.TemporaryDirectory(prefix="genbench-scale-ray-") as tmp:
        for n in sizes:
            measured.append(ray_sweep(n, Path(tmp)))
            ctx.say("  " + _ray_line(measured[-1], measured[0]))
    base, last = measured[0], measured[-1]
    lines = [_ray_line(m, base) for m in measured]
    ratio = last["driver_cpu_ms"] / base["driver_cpu_ms"]
    target = Target(
        f"driver CPU per trial at {last['trials']:,} / at {base['trials']:,}", ratio, BOOKKEEPING_RATIO, "<="
    )
    return CaseResult(lines, {"sizes": sizes, "measured": measured}, [target])


def _ray_line(m: dict[str, Any], base: dict[str, Any]) -> str:
    return (
        f"{m['trials']:>5,} trials: driver CPU {m['driver_cpu_ms']:.1f} ms/trial "
        f"({m['driver_cpu_ms'] / base['driver_cpu_ms']:.2f}x), wall {m['wall_ms']:.0f} ms/trial "
        f"({m['wall_ms'] / base['wall_ms']:.2f}x)"
    )
