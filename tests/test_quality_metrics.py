"""Feature-space metrics, the digit classifier and stability values on known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from genbench.config import DataConfig
from genbench.data import load_dataset
from genbench.metrics.extractors import accuracy, digit_net, extractor_for
from genbench.metrics.features import density_coverage, frechet_distance, kid, precision_recall, sliced_wasserstein
from genbench.metrics.stability import best_to_final_gap, oscillation
from genbench.train.evaluate import class_modes
from together import run_together  # tests/ is on sys.path


def reference_fd(x: np.ndarray, y: np.ndarray) -> float:
    """The Frechet distance as pytorch-fid computes it (scipy's matrix square root), for comparison."""
    mu1, mu2, s1, s2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def features(digits):
    return extractor_for(digits)


def test_fd_matches_the_reference_implementation_on_the_same_features() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    y = rng.normal(loc=0.3, size=(300, 16)) @ rng.normal(size=(16, 16))
    assert frechet_distance(torch.as_tensor(x), torch.as_tensor(y)) == pytest.approx(reference_fd(x, y), rel=1e-6)


def test_fd_closed_form_for_gaussians() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(200_000, 2, generator=gen, dtype=torch.float64) * 2 + torch.tensor([3.0, 0.0], dtype=torch.float64)
    # |mu|^2 + tr(I + 4I - 2 * 2I) = 9 + 2
    assert frechet_distance(x, y) == pytest.approx(11.0, rel=0.02)


def test_classifier_accuracy_above_95_percent(digits) -> None:
    net = digit_net(digits.train, digits.train_labels)
    assert accuracy(net, digits.test, digits.test_labels) > 0.95


def test_processes_starting_together_train_the_digit_classifier_once(tmp_path: Path) -> None:
    """Three trials of a node need the classifier at once: one trains and caches it, the others wait and load it."""
    cache, trainings = tmp_path / "cache", tmp_path / "trainings"
    setup = f"""
import os, torch
os.environ["GENBENCH_CACHE"] = {str(cache)!r}
torch.set_num_threads(1)
from genbench.metrics import extractors
real = extractors.train_digit_net
def counted(*args, **kwargs):  # the side effect counted: one line per training
    with open({str(trainings)!r}, "a") as f:
        f.write("trained\\n")
    return real(*args, **kwargs)
extractors.train_digit_net = counted
train, labels = torch.rand(128, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(128) % 10
"""
    action = "print(sum(float(p.sum()) for p in extractors.digit_net(train, labels).parameters()))"
    results = run_together(setup, action, 3, tmp_path)
    assert trainings.read_text().splitlines() == ["trained"]
    assert len({r.stdout for r in results}) == 1  # the same weights in every process
    assert [p.suffix for p in cache.iterdir()] == [".pt"]  # no lock or temporary file left beside it


def test_real_vs_real_is_close_and_real_vs_noise_is_far(digits, features) -> None:
    real = features.features(digits.test)
    other = features.features(digits.train[:359])
    noise = features.features(torch.rand(359, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    fd_real, fd_noise = frechet_distance(real, other), frechet_distance(real, noise)
    assert fd_real < 0.05 * fd_noise
    assert abs(kid(real, other, subsets=20)[0]) < 0.05 * kid(real, noise, subsets=20)[0]
    precision, recall = precision_recall(real, other)
    assert precision > 0.8 and recall > 0.8
    # uniform noise lands near a few real digits in this small classifier's 64-d space (measured: 0.11)
    assert precision_recall(real, noise)[0] < 0.15 * precision
    density, coverage = density_coverage(real, other)
    assert density > 0.7 and coverage > 0.8 and density_coverage(real, noise)[1] < 0.15 * coverage


def test_fd_grows_monotonically_with_blur(digits, features) -> None:
    real = features.features(digits.test)
    other = digits.train[:600]
    kernel = torch.tensor([0.25, 0.5, 0.25])
    fds = []
    image = other
    for _ in range(4):
        fds.append(frechet_distance(real, features.features(image)))
        padded = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="replicate")
        image = torch.nn.functional.conv2d(padded, (kernel[:, None] * kernel[None, :])[None, None])  # 3x3 blur
    assert fds == sorted(fds) and fds[-1] > 3 * fds[0]


def test_one_class_covers_one_mode_and_all_classes_cover_ten(digits, features) -> None:
    threes = digits.test[digits.test_labels == 3]
    collapsed = class_modes(features.classify(threes[:1].repeat(500, 1, 1, 1)), 10)  # a generator stuck on one 3
    assert collapsed["modes"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(10))
    predicted = features.classify(threes)
    assert (predicted == 3).double().mean() > 0.9
    assert class_modes(features.classify(digits.test), 10)["modes"] == 10


def test_stacked_digits_classify_all_three_channels() -> None:
    data = load_dataset(DataConfig(name="stacked_digits", n_train=100, n_test=300))
    extractor = extractor_for(data)
    assert extractor.num_classes == 1000 and extractor.features(data.test[:5]).shape == (5, 192)
    assert (extractor.classify(data.test) == data.test_labels).double().mean() > 0.8


def test_sliced_wasserstein_known_answers() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 2, generator=gen)  # a shift's distance is exact for any sample: the directions set the error
    assert sliced_wasserstein(x, x.clone()) == pytest.approx(0.0, abs=1e-12)
    shifted = x + torch.tensor([1.0, 0.0])  # a shift v projects to |v . theta|, whose mean over directions is 2|v|/pi
    assert sliced_wasserstein(x, shifted, projections=4000) == pytest.approx(2 / math.pi, rel=0.03)


def test_stability_values() -> None:
    assert oscillation([1, 2, 3, 10, 10, 10]) == 0.0
    assert oscillation([5, 5, 5, 5, 6, 4]) == pytest.approx(np.std([6, 4], ddof=1) / 5)  # the last third: 2 of 6
    assert oscillation([5, 5, 5, 5, 5, 5, 5, 5, 4, 6, 4]) == pytest.approx(np.std([5, 4, 6, 4], ddof=1) / 4.75)
    assert math.isnan(oscillation([3.0]))
    assert best_to_final_gap([1, 20, 15], "max") == 5 and best_to_final_gap([9, 2, 4], "min") == 2
    assert best_to_final_gap([1, 2, 3], "max") == 0 and math.isnan(best_to_final_gap([1.0, math.nan], "max"))
