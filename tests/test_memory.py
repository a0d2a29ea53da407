"""Bounded memory: chunked sampling, likelihood, training and feature statistics equal unchunked; per-run peaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genbench.config import from_flat
from genbench.data import Dataset
from genbench.families import FAMILIES
from genbench.metrics import features

FAMILY_NAMES = ("gan", "vae", "diffusion", "autoregressive", "flow")


def build(name: str, data: Dataset, **flat: Any) -> Any:
    """A debug-sized family on digits, built with seed 0 (two builds have the same weights)."""
    torch.manual_seed(0)
    cfg = from_flat({"family": name, "data.name": "digits", "train.steps": 10, **FAMILIES.get(name).debug, **flat})
    return FAMILIES.get(name).build(cfg, data)


def twice(fn: Any, family: Any, chunk: int, seed: int) -> tuple[Any, Any]:
    """fn(family) with the family's own chunk size (the whole input at once here), then with `chunk` rows."""
    torch.manual_seed(seed)
    whole = fn(family)
    family.chunk = chunk
    torch.manual_seed(seed)
    return whole, fn(family)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_chunked_sampling_equals_unchunked(digits: Dataset, name: str) -> None:
    family = build(name, digits)
    assert family.chunk >= 12  # digits fit one chunk by default: the first call is unchunked
    whole, chunked = twice(lambda f: f.sample(12), family, 5, seed=1)  # chunks of 4, 4, 4
    assert whole.shape == (12, *digits.shape)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["vae", "autoregressive", "flow"])
def test_chunked_likelihood_equals_unchunked(digits: Dataset, name: str) -> None:
    family = build(name, digits)
    family.train_step(digits.train[:32])  # off the initial weights
    x = digits.test[:10]
    whole, chunked = twice(lambda f: f.nll(x), family, 3, seed=2)  # the VAE: 4 example chunks x 8 IWAE draws
    assert whole.shape == (10,) and torch.isfinite(whole).all()
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["vae", "autoregressive"])
def test_micro_batched_training_step_has_the_whole_batch_gradient(digits: Dataset, name: str) -> None:
    one, split = build(name, digits), build(name, digits)
    split.chunk = 7  # 32 rows in 5 micro-batches
    batch = digits.train[:32]
    torch.manual_seed(3)
    out_one = one.train_step(batch)
    torch.manual_seed(3)
    out_split = split.train_step(batch)
    for key, value in out_one.items():
        torch.testing.assert_close(out_split[key], value, rtol=1e-4, atol=1e-6)
    for module in one.modules():
        for p_one, p_split in zip(one.modules()[module].parameters(), split.modules()[module].parameters()):
            torch.testing.assert_close(p_split.grad, p_one.grad, rtol=1e-4, atol=1e-6)


def test_chunked_feature_statistics_equal_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(70, 6, generator=gen), torch.randn(50, 6, generator=gen) + 0.3
    whole = [*features.precision_recall(real, fake), *features.density_coverage(real, fake)]
    monkeypatch.setattr(features, "chunk_rows", lambda row_bytes: 8)  # distance matrices of 8 rows at a time
    chunked = [*features.precision_recall(real, fake), *features.density_coverage(real, fake)]
    assert chunked == pytest.approx(whole, abs=1e-12)
    assert 0 < whole[0] < 1 and 0 < whole[3] < 1  # not a degenerate case that any chunking would pass


def test_a_sampling_pass_keeps_only_the_pixel_it_draws(digits: Dataset) -> None:
    """Each chunk's pass returns a copy of one pixel's parameters, not a view that keeps its whole output alive
    (chunks of views would hold as much memory as one unchunked pass)."""
    family = build("autoregressive", digits)
    params = family._pixel_params(torch.zeros(4, *digits.shape), row=5, col=2)  # (4, C, L, 1, 1)
    assert params.shape == (4, 1, digits.levels, 1, 1)
    assert params.untyped_storage().nbytes() == params.numel() * params.element_size()


def test_a_runs_peak_memory_is_its_own(tiny_flat: dict[str, Any]) -> None:
    """cost.peak_mem_bytes starts afresh with each run (a reused Ray actor does not report an earlier trial's)."""
    from genbench.train.evaluate import peak_memory_bytes
    from genbench.train.run import run

    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("this system does not let a process reset its resident high-water mark")
    big = torch.ones(64 * 2**20)  # 256 MiB, written: resident
    high = peak_memory_bytes(torch.device("cpu"))
    del big
    row = run(tiny_flat)
    assert 0 < row["cost.peak_mem_bytes"] < high - 128 * 2**20, (row["cost.peak_mem_bytes"], high)
