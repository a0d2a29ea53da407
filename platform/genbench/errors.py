"""User-facing errors: one clear message naming the file, the key and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GenbenchError(Exception):
    """An error the user caused; the CLI prints it as one line and exits non-zero."""


class ConfigError(GenbenchError):
    """A bad value or key in a config, study or command-line setting."""

    def __init__(self, problem: str, *, key: str = "", source: str = "", fix: str = "") -> None:
        self.problem, self.key, self.source, self.fix = problem, key, source, fix
        where = f"{source}: " if source else ""
        what = f"{key}: " if key else ""
        tail = f" ({fix})" if fix else ""
        super().__init__(f"{where}{what}{problem}{tail}")


def suggest(name: str, valid: Iterable[str]) -> str:
    """A 'did you mean' hint for a mistyped name, or the list of valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f"valid: {shown}"
