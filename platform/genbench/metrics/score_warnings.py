"""Warnings about a study's quality scores: sample sets small for the feature dimension, and degenerate scores."""

from __future__ import annotations

import math

import pandas as pd

# Below this many examples per feature dimension the covariance that FD fits, and the k-NN balls of
# precision/recall, rest on too few points: FD's upward bias falls like 1/n and grows with F (Chong & Forsyth
# 2020), and at n <= F the covariance is singular (rank n - 1). 4 is where the learned 32-d features of a
# 600-image folder (150 test images) pass.
MIN_PER_DIM = 4
FIX = "hold out more images (data.test_fraction) or raise eval.n_samples"
LOWER_DIM = "eval.features=learned (32-d)"


def score_warnings(trials: pd.DataFrame) -> list[str]:
    """Every warning about the scores of these trial rows, one sentence each (empty when there is none)."""
    return [*small_sets(trials), *degenerate(trials)]


def small_sets(trials: pd.DataFrame) -> list[str]:
    """One warning per way of scoring whose reference or generated set is small for its feature dimension."""
    columns = ["provenance.extractor", "provenance.feature_dim", "provenance.n_reference", "provenance.n_generated"]
    if not set(columns) <= set(trials) or not trials["provenance.feature_dim"].notna().any():
        return []
    out = []
    for extractor, dim, n_ref, n_gen in trials[columns].dropna().drop_duplicates().itertuples(index=False):
        which, n = ("reference (test split)", int(n_ref)) if n_ref <= n_gen else ("generated", int(n_gen))
        if n < MIN_PER_DIM * dim:
            out.append(_small(extractor, int(dim), which, n))
    return out


def _small(extractor: str, dim: int, which: str, n: int) -> str:
    if n <= dim:
        problem = (
            f"no larger than the feature dimension {dim}: its covariance has rank at most {n - 1}, so "
            "quality.fd is dominated by that, and precision/recall rest on k-NN balls of too few points"
        )
    else:
        problem = f"under {MIN_PER_DIM}x the feature dimension {dim}: quality.fd and precision/recall are noisy"
    fix = FIX if extractor.startswith("learned") else f"{FIX}, or use lower-dimensional features: {LOWER_DIM}"
    return f"The {which} set of {n} images is {problem} (features: {extractor}); {fix}."


def degenerate(trials: pd.DataFrame) -> list[str]:
    """Precision 1 with recall 0 in every scored run, and the quality scores identical in every scored run."""
    out = []
    if {"quality.precision", "quality.recall"} <= set(trials):
        pr = trials[["quality.precision", "quality.recall"]].dropna()
        if len(pr) and ((pr["quality.precision"] == 1) & (pr["quality.recall"] == 0)).all():
            out.append(
                f"Every scored run ({len(pr)}) has quality.precision 1 and quality.recall 0: the samples sit "
                "inside the real k-NN balls but cover none of the real images, which a reference set small "
                f"for its features gives as much as a collapsed model does; check the set sizes ({FIX})."
            )
    constant = _constant(trials)
    if constant:
        values = ", ".join(f"{m} {v:.4g}" for m, (v, _) in constant.items())
        runs = max(n for _, n in constant.values())
        out.append(f"Identical in every one of the {runs} scored runs, so they do not tell the runs apart: {values}.")
    return out


def _constant(trials: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """quality.* columns with one finite value over two or more runs: metric -> (value, runs)."""
    out = {}
    for metric in (c for c in trials.columns if c.startswith("quality.") and c != "quality.kid_std"):
        values = pd.to_numeric(trials[metric], errors="coerce").dropna()
        values = values[values.map(math.isfinite)]
        if len(values) >= 2 and values.nunique() == 1:
            out[metric] = (float(values.iloc[0]), len(values))
    return out
