"""Quality and likelihood of a trained family on its data set, and sampling throughput."""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from genbench.data import Dataset
from genbench.families.base import Family
from genbench.metrics.modes import mode_metrics

NLL_MAX_EXAMPLES, NLL_BATCH = 2000, 500  # bounded cost of the final likelihood evaluation


def evaluate(family: Family, data: Dataset, n_samples: int) -> dict[str, float]:
    """Quality metrics (names without prefix) of n_samples fresh samples; {} where none applies yet."""
    samples = family.sample(n_samples)  # (n, D)
    if data.modes is not None and data.sigma is not None:
        return mode_metrics(samples, data.modes, data.sigma)
    return {}


@torch.no_grad()
def likelihood(family: Family, data: Dataset) -> dict[str, Any]:
    """likelihood.nll (nats per example) on the test split, bpd for images, and how it was computed."""
    if not getattr(family, "nll_method", ""):  # no likelihood, or one switched off (diffusion's bound is costly)
        return {}
    test = data.test[:NLL_MAX_EXAMPLES]
    nll = torch.cat([family.nll(chunk) for chunk in test.split(NLL_BATCH)]).mean().item()
    out: dict[str, Any] = {"likelihood.nll": nll, "likelihood.method": family.nll_method,
                           "likelihood.n_test": len(test)}
    if data.is_image:
        out["likelihood.bpd"] = nll / (data.dim * math.log(2))
    return out


def sample_cost(family: Family, n_samples: int) -> dict[str, float]:
    """cost.sample_per_s for one batch of n_samples (wall clock) and cost.sample_nfe where the family knows it."""
    start = time.perf_counter()
    family.sample(n_samples)
    out = {"cost.sample_per_s": n_samples / max(time.perf_counter() - start, 1e-9)}
    nfe = getattr(family, "sample_nfe", None)
    if nfe is not None:
        out["cost.sample_nfe"] = float(nfe)
    return out
