"""Column layout and types of the results tables, and their schema version.

Every part file of a study carries the same metric columns with the same types (null where a value was
not measured), so that a plain `pyarrow.dataset.dataset(dir)`, which takes its schema from one file,
reads every part whole.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# 2: one optim.* section in every family (optim.lr_decay, optim.warmup_steps; weight decay decoupled). Readers open
# every version (docs/results.md lists what each changed)
SCHEMA_VERSION = 2
METADATA = {b"genbench.schema_version": str(SCHEMA_VERSION).encode()}

# Columns every trials row has, in this order; config.* and metric columns follow.
TRIAL_COLUMNS = ("trial_id", "config_id", "study", "family", "status", "seed", "error", "start_time", "end_time")
STATUSES = ("completed", "diverged", "early_stopped", "failed")
TIME_COLUMNS = ("start_time", "end_time")  # stored as UTC timestamps, given as epoch seconds
STRING_COLUMNS = {
    "trial_id",
    "config_id",
    "train_path",
    "worker_nodes",
    "resumed_from",
    "study",
    "family",
    "status",
    "error",
    "traceback",
    "likelihood.method",
    "provenance.extractor",
    "provenance.reference",
    "provenance.sampler",
    "cost.device",
    "cost.device_options",  # cost.device*: what cost was measured on
    "cost.visible_devices",
}  # the GPU ids the run saw: '' none, '0', '0,1'; ';' between Ray Train ranks
TYPES = {
    "stability.diverged": pa.bool_(),
    "stability.steps_to_diverge": pa.int64(),
    "cost.params": pa.int64(),
    "seed": pa.int64(),
    "steps": pa.int64(),
    "workers": pa.int64(),
    "step": pa.int64(),
    "likelihood.n_test": pa.int64(),
    "provenance.n_reference": pa.int64(),
    "provenance.n_generated": pa.int64(),
    "provenance.feature_dim": pa.int64(),
    "provenance.kid_subsets": pa.int64(),
    "provenance.kid_subset_size": pa.int64(),
}


def _column(name: str, values: list[Any]) -> pa.Array:
    if name in TIME_COLUMNS:
        return pa.array([None if v is None else int(v * 1e6) for v in values], pa.int64()).cast(
            pa.timestamp("us", tz="UTC")
        )
    if name in STRING_COLUMNS:
        return pa.array(values, pa.string())
    if name in TYPES:
        return pa.array(values, TYPES[name])
    if name.startswith(("quality.", "likelihood.", "stability.", "cost.", "eval.", "train.")):
        return pa.array(values, pa.float64())
    return pa.array(values)


def table_from_rows(rows: list[dict[str, Any]], first: tuple[str, ...] = (), pad: tuple[str, ...] = ()) -> pa.Table:
    """A table over the union of the rows' keys and `pad` (missing values are null), `first` columns leading."""
    names: dict[str, None] = dict.fromkeys(k for k in first if any(k in r for r in rows))
    for row in rows:
        names.update(dict.fromkeys(row))
    names.update(dict.fromkeys(pad))
    columns = {n: _column(n, [r.get(n) for r in rows]) for n in names}
    return pa.table(columns).replace_schema_metadata(METADATA)
