"""The studies shipped inside the package (genbench/studies/*.yaml): found by name, listed, and copied out to edit."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from genbench.errors import ConfigError, suggest

STUDIES = Path(__file__).resolve().parent / "studies"  # package data: installed with genbench, wheel or checkout


def study_names() -> list[str]:
    """The shipped studies' names (each file's stem, which is also its `study:` name), sorted."""
    return sorted(p.stem for p in STUDIES.glob("*.yaml"))


def _names_fix(given: str) -> str:
    """'did you mean ...? shipped studies: a, b, ...; or give a study file's path'."""
    names = study_names()
    close = suggest(Path(given).stem, names)
    hint = f"{close} " if close.startswith("did you mean") else ""
    return f"{hint}shipped studies: {', '.join(names)}; or give a study file's path"


def resolve_study(given: str | os.PathLike[str]) -> str:
    """A study argument as a file path: a path that exists wins, else the shipped study of that name; anything else
    is one ConfigError that lists the shipped names."""
    given = os.fspath(given)
    if os.path.exists(given):
        return given
    if given in study_names():
        return str(STUDIES / f"{given}.yaml")
    if Path(given).suffix or os.sep in given:  # meant as a path
        raise ConfigError("no such study file", source=given, fix=_names_fix(given))
    raise ConfigError(f"no such shipped study {given!r}", fix=_names_fix(given))


def edit_fix(key: str, source: str) -> str:
    """How a user changes a study's key: in its file, or for a shipped study (inside the installed package) in a
    copy of it."""
    if source and Path(source).parent == STUDIES:
        return f"genbench copy-study {Path(source).stem}, then edit {key} in the copy and run that"
    return f"edit {key} in {source or 'the study file'} instead"


def copy_study(name: str, dest: str | None = None, force: bool = False) -> Path:
    """Copy a shipped study to `dest` (a file, or a folder to put <name>.yaml in; default ./<name>.yaml) to edit;
    an existing file is replaced only with `force`. Returns the written path."""
    if name not in study_names():
        raise ConfigError(f"no such shipped study {name!r}", fix=_names_fix(name))
    target = Path(dest or ".")
    if target.is_dir() or (dest or "").endswith(("/", os.sep)):
        target = target / f"{name}.yaml"
    if target.exists() and not force:
        raise ConfigError(
            "already exists; not overwritten", source=str(target), fix="give another DEST, or --force to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STUDIES / f"{name}.yaml", target)
    return target
