"""mode_metrics against known answers: true samples, a collapsed generator, samples off every mode, NaNs."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.data.toy2d import grid25_modes, ring8_modes, sample_mixture
from genbench.metrics.modes import mode_metrics

MIXTURES = {"ring8": (ring8_modes(), 0.01), "grid25": (grid25_modes(), 0.05)}


@pytest.mark.parametrize("name", MIXTURES)
def test_true_samples_score_perfectly(name: str) -> None:
    modes, sigma = MIXTURES[name]
    samples = sample_mixture(modes, sigma, 2500, torch.Generator().manual_seed(0))
    m = mode_metrics(samples, modes, sigma)
    assert m["modes"] == len(modes)
    assert m["hq_fraction"] > 0.95
    assert 0.0 <= m["mode_kl"] < 0.05


@pytest.mark.parametrize("name", MIXTURES)
def test_collapsed_generator_covers_one_mode(name: str) -> None:
    modes, sigma = MIXTURES[name]
    samples = modes[3] + sigma * 0.5 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(1))
    m = mode_metrics(samples, modes, sigma)
    assert m["modes"] == 1 and m["hq_fraction"] > 0.95
    assert m["mode_kl"] == pytest.approx(math.log(len(modes)), rel=1e-9)


def test_two_of_four_even_modes() -> None:
    modes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    samples = modes[[0, 1] * 50]
    m = mode_metrics(samples, modes, 0.01)
    assert m == {"modes": 2.0, "hq_fraction": 1.0, "mode_kl": pytest.approx(math.log(2))}


def test_samples_far_from_every_mode() -> None:
    modes, sigma = MIXTURES["grid25"]
    m = mode_metrics(torch.full((500, 2), 100.0), modes, sigma)
    assert m["modes"] == 0 and m["hq_fraction"] == 0 and math.isnan(m["mode_kl"])


def test_non_finite_samples_are_low_quality() -> None:
    modes, sigma = MIXTURES["ring8"]
    good = modes.repeat(50, 1)  # (400, 2), exactly on the modes
    bad = torch.tensor([[math.nan, 0.0], [math.inf, 1.0], [-math.inf, math.inf], [math.nan, math.nan]]).repeat(100, 1)
    m = mode_metrics(torch.cat([good, bad]), modes, sigma)
    assert m["modes"] == 8 and m["hq_fraction"] == pytest.approx(0.5) and m["mode_kl"] == pytest.approx(0.0)
    all_bad = mode_metrics(bad, modes, sigma)
    assert all_bad["modes"] == 0 and all_bad["hq_fraction"] == 0 and math.isnan(all_bad["mode_kl"])


def test_hq_threshold_is_three_sigma() -> None:
    modes = torch.zeros(1, 2)
    inside, outside = torch.tensor([[0.029, 0.0]]), torch.tensor([[0.031, 0.0]])
    assert mode_metrics(inside, modes, 0.01)["hq_fraction"] == 1.0
    assert mode_metrics(outside, modes, 0.01)["hq_fraction"] == 0.0
