"""The prepared GPU sweep check (scripts/gpu_sweep_check.py) at CPU size: dry-run rows, packing ratio, Ray Train."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_sweep_check.py"


def _check(tmp_path: Path, *options: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *options], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )


@pytest.mark.ray
def test_the_cpu_version_passes_every_check_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    proc = _check(
        tmp_path, "--device", "cpu", "--trials", "2", "--pack-steps", "50", "--out", str(out)
    )  # 4, 800 by default
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith(f"Results: {out}") and "packed pair" in proc.stdout
    report = json.loads(out.read_text())
    assert report["ok"] and report["failures"] == [] and report["device"] == "cpu"
    checks = report["checks"]
    assert set(checks) == {"dry_run", "packing", "ray_train"} and all(c["ok"] for c in checks.values()), checks

    rows = checks["dry_run"]["rows"]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert all(
        r["cost.device"] == "cpu"
        and r["cost.gpu_share"] == 0
        and r["cost.visible_devices"] == ""
        and r["cost.device_s"] > 0
        for r in rows
    ), rows
    assert checks["dry_run"]["plan"].startswith("Resources: each trial asks for 1 CPU")

    packing = checks["packing"]
    assert math.isfinite(packing["ratio"]) and packing["ratio"] > 0 and packing["alone_samples_per_s"] > 0
    assert [r["device"] for r in [packing["alone"], *packing["packed"]]] == ["cpu"] * 3

    train = checks["ray_train"]
    assert train["status"] == "completed" and train["steps"] == report["sizes"]["steps"] == 40
    assert train["device"] == "cpu" and train["backend"] == "gloo" and train["train_path"] == "ray-train"


@pytest.mark.parametrize("options,key", [(["--share", "0.7"], "--share"), (["--trials", "0"], "--trials")])
def test_bad_options_exit_2_before_anything_starts(tmp_path: Path, options: list[str], key: str) -> None:
    proc = _check(tmp_path, *options, "--device", "cpu", timeout=120)
    assert proc.returncode == 2 and key in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "gpu_sweep_check.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_exits_2(tmp_path: Path) -> None:
    proc = _check(tmp_path, "--device", "cuda", timeout=120)
    assert proc.returncode == 2 and "--device" in proc.stderr and "--device cpu" in proc.stderr, proc.stderr
