"""A wheel built from the checkout is complete: installed (not editable) into a fresh venv, genbench runs a shipped
study's dry run by name from an empty directory and builds every dashboard page. Costs ~45 s on 2 CPUs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from genbench.dashboards.spec import load_pages

# The dry run starts a private local Ray; `wheel`: the one test that builds and installs the package.
pytestmark = [pytest.mark.ray, pytest.mark.wheel]

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "platform/genbench")  # what the build reads, nothing else
# gan_stability's dry run (12 trials) cut to seconds: every key here is a run key the study does not search.
TINY = {
    "train.steps": 20,
    "eval.every": 20,
    "eval.n_samples": 300,
    "data.n_train": 1000,
    "data.n_test": 300,
    "gan.g_width": 16,
    "gan.d_width": 16,
    "train.batch_size": 32,
}


def _wheel(tmp: Path) -> Path:
    """Build from a copy of the sources (an in-tree build would leave build/ and egg-info in the checkout), offline:
    the test venv's setuptools (the `test` extra's floor) builds it."""
    src = tmp / "src"
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copyfile
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        copy(
            ROOT / name,
            src / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", src], check=True
    )
    [wheel] = (tmp / "dist").glob("genbench-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv without pip whose .pth reaches this venv's packages (torch, Ray, ... not downloaded again), with the
    wheel installed into its own site-packages, which come first: its genbench, not the editable checkout, is
    imported (a path a .pth adds is searched after the venv's own site-packages, and its .pth files, such as the
    editable install's finder, are not run)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "test-venv-packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    return venv


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    return subprocess.run(
        [venv / "bin" / "genbench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_an_installed_wheel_runs_a_shipped_study_by_name_and_builds_every_page(tmp_path: Path) -> None:
    venv = _fresh_venv(tmp_path, _wheel(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import genbench; print(genbench.__file__)"],
        cwd=empty,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's genbench, not the checkout's
    listed = _run(venv, empty, "list", "studies")
    assert listed.returncode == 0 and listed.stdout.split()[0] == "autoregressive", listed.stderr
    sets = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    proc = _run(venv, empty, "dry-run", "gan_stability", "--out", "out", *sets)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Done: 12 trials" in proc.stdout
    pages = {f"{page.name}.html" for page in load_pages()} | {"index.html", "metrics.html"}
    assert len(pages) == 5 and pages <= {p.name for p in (empty / "out" / "dashboards").iterdir()}
    assert sorted(p.name for p in empty.iterdir()) == ["out"]  # nothing written beside the results
