"""genbench's feature-space metrics against the reference packages people compare with, on identical features.

prdc 0.2 (Naeem et al.'s own package) for precision, recall, density and coverage; torchmetrics' functional
code for the Frechet distance and KID's MMD; pytorch-fid's preprocessing formula for the FID Inception input.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from prdc import compute_prdc
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd

from genbench.metrics.features import (
    _mean_cov,
    _mmd2_unbiased,
    density_coverage,
    frechet_distance,
    kid,
    kid_subset_size,
    precision_recall,
)
from genbench.metrics.inception import preprocess


def features(seed: int, n_real: int = 300, n_fake: int = 240, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous features: a real Gaussian and a shifted, narrower fake one, (N, D) and (M, D) float64."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n_real, dim, generator=gen, dtype=torch.float64)
    fake = 0.8 * torch.randn(n_fake, dim, generator=gen, dtype=torch.float64) + 0.5
    return real, fake


def reference_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return {key: float(v) for key, v in compute_prdc(real.numpy(), fake.numpy(), nearest_k=k).items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_density_coverage_equal_prdc_on_continuous_features(seed: int, k: int) -> None:
    real, fake = features(seed)
    ref = reference_prdc(real, fake, k)
    precision, recall = precision_recall(real, fake, k=k)
    density, coverage = density_coverage(real, fake, k=k)
    assert 0.3 < precision < 1 and 0.3 < recall < 1 and 0.3 < coverage < 1  # a partial overlap, not a trivial case
    # each value is a count over N or M rows: equality up to float rounding of the mean
    assert (precision, recall, density, coverage) == pytest.approx(
        (ref["precision"], ref["recall"], ref["density"], ref["coverage"]), abs=1e-12
    )


def test_the_tie_rule_on_duplicated_features() -> None:
    """Precision/recall count a probe on a ball's boundary (`<=`, Kynkaanniemi et al.'s code), density and
    coverage do not (`<`, prdc). Ties happen with discrete features: integer points on a line."""
    real = torch.arange(10, dtype=torch.float64).unsqueeze(1)  # (10, 1): 0, 1, ..., 9; every 1-NN radius is 1
    fake = real + 1  # (10, 1): 1, ..., 10; fake 10 lies on real 9's boundary, real 0 on fake 1's
    ref = reference_prdc(real, fake, 1)
    precision, recall = precision_recall(real, fake, k=1)
    density, coverage = density_coverage(real, fake, k=1)
    assert (density, coverage) == pytest.approx((ref["density"], ref["coverage"]), abs=1e-12)
    assert (density, coverage) == pytest.approx((0.9, 0.9))  # real 0's nearest fake is on its boundary: not covered
    assert (precision, recall) == (1.0, 1.0)  # boundary points counted
    assert (ref["precision"], ref["recall"]) == pytest.approx((0.9, 0.9))  # prdc's strict rule leaves them out


@pytest.mark.parametrize("seed", [0, 1])
def test_frechet_distance_equals_torchmetrics(seed: int) -> None:
    real, fake = features(seed, 400, 350, 6)
    (mu_r, cov_r), (mu_f, cov_f) = _mean_cov(real), _mean_cov(fake)
    reference = float(_compute_fid(mu_r, cov_r, mu_f, cov_f))
    assert reference > 0.5  # the sets differ: a distance well above rounding
    assert frechet_distance(real, fake) == pytest.approx(reference, rel=1e-9)


def test_kid_mmd_equals_torchmetrics_on_identical_subsets() -> None:
    real, fake = features(3, 200, 200, 16)
    assert float(_mmd2_unbiased(real, fake)) == pytest.approx(float(poly_mmd(real, fake)), rel=1e-10)
    # one subset holding every row: KID is the MMD of the whole sets (the estimate ignores row order)
    mean, _ = kid(real, fake, subsets=1, subset_size=1000)
    assert mean == pytest.approx(float(poly_mmd(real, fake)), rel=1e-10)
    assert kid_subset_size(200, 200) == 200 and kid_subset_size(5000, 2500) == 1000


@pytest.mark.parametrize("channels", [1, 3])
def test_inception_preprocessing_is_pytorch_fids_formula(channels: int) -> None:
    """pytorch-fid 0.3.0, InceptionV3.forward with resize_input and normalize_input (its FID defaults):
    F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False), then 2 * x - 1. pytorch-fid itself
    needs torchvision, whose PyPI build does not load with the CPU torch build used here (docs/metrics.md)."""
    x = torch.rand(2, channels, 28, 28, generator=torch.Generator().manual_seed(0))  # images in [0, 1]
    rgb = x.repeat(1, 3, 1, 1) if channels == 1 else x  # pytorch-fid takes RGB; genbench repeats grey
    expected = 2 * F.interpolate(rgb, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.equal(preprocess(x), expected)
    assert np.isclose(float(preprocess(torch.ones(1, 3, 8, 8)).min()), 1.0)  # white stays at the top of [-1, 1]
