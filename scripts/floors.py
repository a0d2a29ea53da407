"""`make floors`: pyproject.toml's dependency floors as exact pins, and a check that an environment runs on them.

    python scripts/floors.py pins    every dependency pinned at its floor (torch: the Makefile's CPU pin), for pip -c
    python scripts/floors.py check   the installed versions are the floors, and every genbench module imports

Torch is the exception: only the Makefile's CPU build (torch==2.13.0) is installable here, so its floor (2.9) is
checked as a floor (installed >= 2.9), not run. docs/dependency-floors.md has what `make floors` measured.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import time
from importlib.metadata import version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
NOT_PINNED = "torch"  # its floor's CPU build is on no index this machine reaches; the Makefile's pin stands in


def floors() -> dict[str, Version]:
    """Each dependency's lower bound (its `>=`), by distribution name."""
    out = {}
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        [bound] = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        out[requirement.name.lower()] = bound
    return out


def pins() -> list[str]:
    """'name==floor' for every dependency (extras left out: pip's constraints take none), torch at the Makefile's."""
    torch = re.search(r"^TORCH \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert torch, "Makefile: no `TORCH ?= torch==...` line"
    return [torch.group(1) if name == NOT_PINNED else f"{name}=={floor}" for name, floor in floors().items()]


def check_versions() -> list[str]:
    """The problems: a dependency installed above its floor (pip resolved past it), or torch below its floor."""
    problems = []
    for name, floor in floors().items():
        installed = Version(Version(version(name)).base_version)  # 2.13.0+cpu -> 2.13.0
        if installed < floor or (name != NOT_PINNED and installed != floor):
            problems.append(f"{name} {installed} installed, floor {floor}")
    return problems


def import_all() -> list[str]:
    """Import every genbench module (not __main__, which runs the CLI); the failures, one line each."""
    import genbench

    failed = []
    for module in pkgutil.walk_packages(genbench.__path__, "genbench."):
        if module.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, not only the first
            failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
    return failed


def main(argv: list[str]) -> int:
    if argv == ["pins"]:
        print("\n".join(pins()))
        return 0
    if argv != ["check"]:
        print(__doc__, file=sys.stderr)
        return 2
    start = time.monotonic()
    versions, imports = check_versions(), import_all()
    print("\n".join(versions + imports) or f"floors: {', '.join(f'{n} {version(n)}' for n in floors())}")
    print(
        f"{'ok' if not versions else 'FAILED'}: the floors installed; {'ok' if not imports else 'FAILED'}: every "
        f"genbench module imported ({time.monotonic() - start:.1f} s)"
    )
    return 1 if versions or imports else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
