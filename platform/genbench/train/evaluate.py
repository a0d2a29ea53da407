"""Quality of a family's samples against its data set, and sampling throughput."""
from __future__ import annotations

import time

from genbench.data import Dataset
from genbench.families.base import Family
from genbench.metrics.modes import mode_metrics


def evaluate(family: Family, data: Dataset, n_samples: int) -> dict[str, float]:
    """Quality metrics (names without prefix) of n_samples fresh samples."""
    samples = family.sample(n_samples)  # (n, D)
    if data.modes is not None and data.sigma is not None:
        return mode_metrics(samples, data.modes, data.sigma)
    return {}


def sample_rate(family: Family, n_samples: int) -> float:
    """Samples per second for one batch of n_samples, timed on the wall clock."""
    start = time.perf_counter()
    family.sample(n_samples)
    return n_samples / max(time.perf_counter() - start, 1e-9)
