"""Case 'startup': `genbench --help` and `validate` import cost, and `genbench dry-run` up to its first trial."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, spread
from genbench.shipped import STUDIES

HEAVY = ("torch", "ray", "optuna", "pyarrow", "pandas", "plotly")
ROOT = Path(__file__).resolve().parents[3]
PROBE = """import sys
from genbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def command_s(args: list[str], repeats: int, cwd: Path = ROOT) -> Any:
    """Wall seconds of a fresh Python process running `args` (stdout discarded), `repeats` times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return spread(times)


def heavy_imports(cli_args: list[str]) -> list[str]:
    """The heavy modules a CLI command leaves in sys.modules (a fresh process)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *cli_args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("HEAVY=")), "HEAVY=")
    return [m for m in line[len("HEAVY=") :].split(",") if m]


def first_trial_s(folder: str) -> dict[str, float]:
    """`genbench dry-run` of a one-trial study in a fresh process: seconds until its trial starts training."""
    from genbench.bench.sweep import TINY, study_file
    from genbench.results.store import ResultsStore

    study_file(folder, "bench_startup", 1, 20, 1, TINY)
    out = str(Path(folder) / "out")
    launched = time.time()
    subprocess.run(
        [sys.executable, "-m", "genbench", "dry-run", str(Path(folder) / "bench_startup.yaml"), "--out", out],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ended = time.time()
    started = ResultsStore(out).read("trials").to_pylist()[0]["start_time"]
    started = started.timestamp() if hasattr(started, "timestamp") else float(started)
    return {"to_first_trial_s": started - launched, "whole_command_s": ended - launched}


def import_s(module: str, repeats: int) -> Any:
    return command_s([sys.executable, "-c", f"import {module}"], repeats)


@CASES.register(
    "startup",
    "start-up: `genbench --help` / `validate` import time and heavy imports, `dry-run` to "
    "its first trial (imports, Ray start)",
)
def startup_case(ctx: Context) -> CaseResult:
    import ray

    from genbench.sweep.connect import start_local_ray

    repeats = ctx.pick(2, 5)
    study = str(STUDIES / "gan_stability.yaml")
    timings = {
        "python -c pass (baseline)": command_s([sys.executable, "-c", "pass"], repeats),
        "genbench --help": command_s([sys.executable, "-m", "genbench", "--help"], repeats),
        "genbench validate gan_stability.yaml": command_s(
            [sys.executable, "-m", "genbench", "validate", study], repeats
        ),
    }
    for module in ("torch", "ray", "genbench.sweep.tuner"):
        timings[f"import {module}"] = import_s(module, repeats)
    heavy = {"--help": heavy_imports(["--help"]), "validate": heavy_imports(["validate", study])}
    ray_start = spread([_ray_start_s(start_local_ray, ray) for _ in range(ctx.pick(1, 3))])
    with tempfile.TemporaryDirectory(prefix="genbench-bench-") as folder:
        dry = first_trial_s(folder)
    base = timings["python -c pass (baseline)"].median
    lines = [
        f"{name:<40} {s.text('.2f', ' s')}"
        + (f"  (+{s.median - base:.2f} s over the interpreter)" if "baseline" not in name else "")
        for name, s in timings.items()
    ]
    lines += [
        f"heavy modules imported by --help: {heavy['--help'] or 'none'}; by validate: {heavy['validate'] or 'none'}",
        f"local Ray start (ray.init): {ray_start.text('.2f', ' s')}",
        f"genbench dry-run (1 tiny trial): first trial training {dry['to_first_trial_s']:.1f} s after the "
        f"command started; whole command {dry['whole_command_s']:.1f} s (dashboards included)",
    ]
    return CaseResult(
        lines,
        {
            "timings": timings,
            "heavy_imports": heavy,
            "ray_start_s": ray_start,
            "dry_run": dry,
            "interpreter": sys.executable,
            "cwd": os.getcwd(),
        },
    )


def _ray_start_s(start: Any, ray: Any) -> float:
    began = time.perf_counter()
    start()
    seconds = time.perf_counter() - began
    ray.shutdown()
    return seconds
