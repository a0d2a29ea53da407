"""Toy 2D mixtures: exact published geometry, spread, fixed seeds, registry descriptions."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.config import DataConfig
from genbench.data import DATASETS, load_dataset
from genbench.errors import ConfigError

TOY_DATASETS = ("ring8", "grid25")


def _load(name: str, n_train: int = 2000, n_test: int = 500):
    return load_dataset(DataConfig(name=name, n_train=n_train, n_test=n_test))


def test_ring8_modes_on_unit_circle() -> None:
    data = _load("ring8")
    expected = torch.tensor(
        [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)], dtype=torch.float64
    ).float()
    assert data.modes is not None and torch.equal(data.modes, expected)
    assert torch.allclose(data.modes.norm(dim=1), torch.ones(8))
    assert data.sigma == 0.01


def test_grid25_modes() -> None:
    data = _load("grid25")
    assert data.modes is not None and data.modes.shape == (25, 2)
    got = {tuple(p) for p in data.modes.tolist()}
    assert got == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert data.sigma == 0.05


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_every_dataset_shapes_and_spread(name: str) -> None:
    data = _load(name)
    assert data.name == name and data.train.shape == (2000, data.dim) and data.test.shape == (500, data.dim)
    assert torch.isfinite(data.train).all() and torch.isfinite(data.test).all()
    if data.modes is not None:
        assert data.sigma is not None and data.modes.shape[1] == data.dim
        nearest = torch.cdist(data.train, data.modes).argmin(dim=1)
        residual = data.train - data.modes[nearest]  # per-coordinate N(0, sigma^2)
        assert residual.std().item() == pytest.approx(data.sigma, rel=0.1)
        assert residual.mean().abs().item() < 0.2 * data.sigma
        assert len(nearest.unique()) == len(data.modes)  # every mode is drawn


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_fixed_seeds(name: str) -> None:
    a, b = _load(name), _load(name)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train[:500], a.test)  # train and test are different draws


def test_registry_descriptions() -> None:
    docs = DATASETS.describe()
    assert {"ring8", "grid25"} <= set(docs)
    for name, doc in docs.items():
        assert doc.strip() and "\n" not in doc, name


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'grid25'"):
        _load("grid26")
