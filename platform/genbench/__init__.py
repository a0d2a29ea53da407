"""genbench: distributed benchmark and hyperparameter search for generative model families."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


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

# The Python API (genbench/api.py, docs/api.md), imported on first use so that `import genbench` stays cheap.
__all__ = ["Best", "Results", "__version__", "load_results", "run_study", "run_training", "write_dashboards"]

if TYPE_CHECKING:
    from genbench.api import Best, Results, load_results, run_study, run_training, write_dashboards


def __getattr__(name: str) -> Any:
    if name in __all__:  # one of the API's names: __version__ is set above, so never asked for here
        # importlib, not an import statement: genbench.api reaches modules that import `genbench` for __version__,
        # and this lazy edge is no cycle at import time (tests/test_import_graph.py reads import statements)
        return getattr(importlib.import_module("genbench.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
