"""Results names that need no pyarrow: path-safe study and trial names, and the columns every table carries."""

from __future__ import annotations

import re

from genbench.errors import ConfigError
from genbench.metrics.names import METRICS

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# Present in every part (null where not measured): the final metrics in trials, their eval.* twins in history.
TRIAL_PAD = (
    *METRICS,
    "quality.kid_std",
    "likelihood.method",
    "likelihood.n_test",
    "provenance.extractor",
    "provenance.reference",
    "provenance.n_reference",
    "provenance.n_generated",
    "provenance.feature_dim",
    "provenance.kid_subsets",
    "provenance.kid_subset_size",
    "provenance.sampler",
    "cost.device",
    "cost.device_options",
    "cost.gpu_share",
    "cost.visible_devices",
)
HISTORY_PAD = tuple(f"eval.{m.split('.', 1)[1]}" for m in (*METRICS, "quality.kid_std") if m.startswith("quality."))


def safe_name(name: str, what: str = "name") -> str:
    """Names used in paths (study names, trial ids): letters, digits, '_', '-', '.', no '..'."""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r} is not allowed in a path",
            key=what,
            fix="use letters, digits, '_', '-' and '.' (no '..', no '/')",
        )
    return name
