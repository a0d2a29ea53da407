"""The commands' --json output: one JSON document on stdout, made of plain values, and nothing else there."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

JSON_HELP = "print one JSON document on stdout instead of text (its shape: docs/cli.md)"


def plain(value: Any) -> Any:
    """JSON's values from ours: NaN and infinities as null (JSON has neither), tuples as lists, dataclasses as
    objects, numpy's scalars (values read from Parquet through pandas) as Python's."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@contextlib.contextmanager
def json_output() -> Iterator[Callable[[Any], None]]:
    """A command's --json block: what it prints on its way (a note, a library's line) goes to stderr, and the function
    it is given prints its one document on stdout, so that stdout holds the document alone and `| jq` parses it."""
    stdout = sys.stdout

    def write(document: Any) -> None:
        print(json.dumps(plain(document), indent=2, allow_nan=False), file=stdout)

    with contextlib.redirect_stdout(sys.stderr):
        yield write
