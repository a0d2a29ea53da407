"""Column layout of the results tables and their schema version."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1
METADATA = {b"genbench.schema_version": str(SCHEMA_VERSION).encode()}

# Columns every trials row has, in this order; config.* and metric columns follow.
TRIAL_COLUMNS = ("trial_id", "study", "family", "status", "seed", "error", "start_time", "end_time")
STATUSES = ("completed", "diverged", "early_stopped", "failed")
TIME_COLUMNS = ("start_time", "end_time")  # stored as UTC timestamps, given as epoch seconds


def _column(name: str, values: list[Any]) -> pa.Array:
    if name in TIME_COLUMNS:
        return pa.array([None if v is None else int(v * 1e6) for v in values], pa.int64()).cast(
            pa.timestamp("us", tz="UTC"))
    return pa.array(values)


def table_from_rows(rows: list[dict[str, Any]], first: tuple[str, ...] = ()) -> pa.Table:
    """A table over the union of the rows' keys (missing values are null), `first` columns leading."""
    names: dict[str, None] = dict.fromkeys(k for k in first if any(k in r for r in rows))
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {n: _column(n, [r.get(n) for r in rows]) for n in names}
    return pa.table(columns).replace_schema_metadata(METADATA)
