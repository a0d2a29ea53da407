"""The package's metadata: `genbench --version` prints the installed distribution's version (a source checkout's
pyproject.toml version when it runs uninstalled), and the declared Apache-2.0 license ships its text."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import tomllib

from genbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DECLARED = PROJECT["version"]


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"genbench {version('genbench')}\n"
    assert version("genbench") == DECLARED  # this checkout's install (make installs it editable)


def test_an_uninstalled_checkout_reads_its_pyproject() -> None:
    # -S: no site-packages, so no installed genbench's metadata; the source comes from PYTHONPATH=platform.
    code = "import genbench, importlib.util as u; print(genbench.__version__, u.find_spec('optuna') is None)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [DECLARED, "True"]


def test_without_metadata_or_pyproject_the_version_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.metadata

    import genbench

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert genbench._version() == DECLARED
    monkeypatch.setattr(genbench, "__file__", str(tmp_path / "a" / "genbench" / "__init__.py"))
    assert genbench._version() == "unknown (not installed, no pyproject.toml)"


def test_the_declared_license_ships_its_full_text() -> None:
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    # The Apache Software Foundation's text whole: its title, the last of the 9 sections and the appendix.
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "9. Accepting Warranty or Additional Liability." in text and "END OF TERMS AND CONDITIONS" in text
    assert text.rstrip().endswith("limitations under the License.")
