"""genbench: distributed benchmark and hyperparameter search for generative model families."""

from __future__ import annotations


def _version() -> str:
    """The installed distribution's version; in a source checkout run without installing (PYTHONPATH=platform),
    the version its pyproject.toml declares."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genbench")
    except PackageNotFoundError:
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"  # platform/genbench/ -> the checkout
        found = re.search(r'^version = "([^"]+)"$', pyproject.read_text(), re.M) if pyproject.is_file() else None
        return found.group(1) if found else "unknown (not installed, no pyproject.toml)"


__version__ = _version()
