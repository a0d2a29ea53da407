"""The bench harness: case registry, spread of repeated timings and ratios, the run loop and its JSON report."""

from __future__ import annotations

import json
import os
import platform as host
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genbench.registry import Registry

CASE_MODULES = (
    "loop",
    "members",
    "sweep",
    "ray_train",
    "search",
    "sampling",
    "startup",
    "scale",
)  # registration order = run order


@dataclass(frozen=True)
class Spread:
    """Median of repeated measurements with their min-max and interquartile range."""

    median: float
    low: float  # min
    high: float  # max
    q1: float
    q3: float
    n: int

    def text(self, fmt: str = ".3f", unit: str = "") -> str:
        if self.n == 1:
            return f"{self.median:{fmt}}{unit} (1 repeat)"
        return f"{self.median:{fmt}}{unit} (min {self.low:{fmt}}, max {self.high:{fmt}}, n={self.n})"


def spread(values: Sequence[float]) -> Spread:
    """Median, min, max and quartiles (inclusive method: the quartiles of 2 values are those values)."""
    if not values:
        raise ValueError("spread of no values")
    ordered = sorted(float(v) for v in values)
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else ordered * 3
    return Spread(statistics.median(ordered), ordered[0], ordered[-1], q1, q3, len(ordered))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratio of each repeat's measurement to its baseline measured beside it (interleaved, same process)."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} measurements against {len(denominators)} baselines")
    return [a / b for a, b in zip(numerators, denominators)]


@dataclass
class Target:
    """A figure the issue sets a goal for: met when value <op> goal."""

    name: str
    value: float
    goal: float
    op: str  # "<=" or ">="

    @property
    def met(self) -> bool:
        return self.value <= self.goal if self.op == "<=" else self.value >= self.goal

    def text(self) -> str:
        return f"target {self.name} {self.op} {self.goal:g}: {self.value:.4g} -> {'MET' if self.met else 'NOT MET'}"


@dataclass
class CaseResult:
    """What a case prints (lines) and records (data: plain JSON values; spreads become dicts)."""

    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)


@dataclass
class Context:
    """What a case may use: the quick flag and a progress printer."""

    quick: bool
    say: Callable[[str], None] = print

    def pick(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full


Case = Callable[[Context], CaseResult]
CASES: Registry[Case] = Registry("bench case")


def load_cases() -> Registry[Case]:
    """Import every case module once (each registers its cases); heavy imports stay inside the cases."""
    import importlib

    for name in CASE_MODULES:
        importlib.import_module(f"genbench.bench.{name}")
    return CASES


def select(names: Sequence[str]) -> list[str]:
    """The cases to run, in registration order; an unknown name is a ConfigError listing the valid ones."""
    registry = load_cases()
    for name in names:
        registry.get(name, key="--case")
    return [n for n in registry.names() if not names or n in names]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    """Where the figures were measured: the machine is shared, so its load is part of every result."""
    import torch

    return {
        "cpus": os.cpu_count(),
        "system": host.platform(),
        "python": host.python_version(),
        "torch": str(torch.__version__),
        "gpu": torch.cuda.is_available(),
        "loadavg": list(os.getloadavg()),
    }


def _plain(value: Any) -> Any:
    """JSON-ready: spreads and targets become dicts, tuples lists."""
    if isinstance(value, (Spread, Target)):
        return {**asdict(value), **({"met": value.met} if isinstance(value, Target) else {})}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _run_case(name: str, case: Case, ctx: Context) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        result = case(ctx)
    except Exception as exc:  # one broken case must not hide the figures of the others
        ctx.say(f"  FAILED: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "wall_s": time.perf_counter() - start}
    for line in result.lines + [t.text() for t in result.targets]:
        ctx.say(f"  {line}")
    return {
        **result.data,
        "wall_s": time.perf_counter() - start,
        "loadavg_before": load0,  # the harness's keys win
        "loadavg_after": os.getloadavg()[0],
        "lines": result.lines,
        "targets": result.targets,
    }


def default_json(quick: bool) -> Path:
    return Path("benchmarks") / "results" / ("bench-quick.json" if quick else "bench.json")


def run_bench(names: Sequence[str], quick: bool, json_path: str | None, out: Any = None) -> int:
    """Run the selected cases one after the other, print their figures, write the JSON report; 1 if a case failed."""
    chosen = select(names)
    path = Path(json_path) if json_path else default_json(quick)

    def say(line: str) -> None:
        print(line, file=out or sys.stdout, flush=True)

    ctx = Context(quick, say)
    report: dict[str, Any] = {
        "command": " ".join(["genbench", "bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "genbench bench",
        "quick": quick,
        "machine": machine(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": {},
    }
    say(
        f"genbench bench{' --quick' if quick else ''}: {len(chosen)} case(s) on {os.cpu_count()} CPUs, "
        f"load average {report['machine']['loadavg'][0]:.2f}"
    )
    start = time.perf_counter()
    for i, name in enumerate(chosen, 1):
        say(f"[{i}/{len(chosen)}] {name}: {CASES.describe()[name]}")
        report["cases"][name] = _run_case(name, CASES.get(name), ctx)
        _write(path, {**report, "wall_s": time.perf_counter() - start})  # a stopped run keeps finished cases
    report.update(wall_s=time.perf_counter() - start, loadavg_end=list(os.getloadavg()))
    _write(path, report)
    _summary(report, say)
    say(f"JSON: {path.resolve()}")
    return 1 if any("error" in c for c in report["cases"].values()) else 0


def _summary(report: dict[str, Any], say: Callable[[str], None]) -> None:
    targets = [(n, t) for n, c in report["cases"].items() for t in c.get("targets", [])]
    say(
        f"\n{len(report['cases'])} case(s) in {report['wall_s']:.0f} s; load average now "
        f"{report['loadavg_end'][0]:.2f} (1 min)"
    )
    for name, t in targets:
        say(f"  {name}: {t.text()}")
    for name, case in report["cases"].items():
        if "error" in case:
            say(f"  {name}: FAILED ({case['error']})")


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_plain(report), indent=1, default=str) + "\n")
    tmp.replace(path)
