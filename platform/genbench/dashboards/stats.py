"""Small statistics for the dashboards: Wilson intervals of rates, mean and spread of measured values."""

from __future__ import annotations

import math
from collections.abc import Iterable


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved at 0/n and n/n); (nan, nan) when n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def finite(values: Iterable[object]) -> list[float]:
    """The finite numbers among values (None, NaN and non-numbers dropped; booleans count as 0/1)."""
    out = []
    for v in values:
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def mean_std(values: Iterable[object]) -> tuple[float, float, int]:
    """(mean, sample std, n) of the finite values; std is nan below two values."""
    xs = finite(values)
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return mean, std, n
