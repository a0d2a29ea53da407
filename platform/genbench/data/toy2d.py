"""2D Gaussian mixtures with exact, published geometry (ring8, grid25)."""

from __future__ import annotations

import math

import torch

from genbench.data.base import Dataset
from genbench.data.names import DATASETS
from genbench.sections import DataConfig

TRAIN_SEED, TEST_SEED = 1234, 5678  # fixed so that every run of a study sees the same points


def ring8_modes() -> torch.Tensor:
    """8 modes on the unit circle at angles 2*pi*i/8."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()  # (8, 2)


def grid25_modes() -> torch.Tensor:
    """25 modes at {-4, -2, 0, 2, 4}^2."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)  # (25, 2)


def sample_mixture(modes: torch.Tensor, sigma: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points from the equal-weight isotropic mixture: a uniform mode plus N(0, sigma^2 I)."""
    which = torch.randint(len(modes), (n,), generator=generator)
    noise = torch.randn(n, modes.shape[1], generator=generator) * sigma
    return modes[which] + noise  # (n, D)


def _mixture(name: str, modes: torch.Tensor, sigma: float, cfg: DataConfig) -> Dataset:
    train = sample_mixture(modes, sigma, cfg.n_train, torch.Generator().manual_seed(TRAIN_SEED))
    test = sample_mixture(modes, sigma, cfg.n_test, torch.Generator().manual_seed(TEST_SEED))
    return Dataset(name=name, train=train, test=test, modes=modes, sigma=sigma)


@DATASETS.register("ring8", "8 Gaussians on the unit circle, sigma 0.01 (toy 2D, 8 modes)")
def ring8(cfg: DataConfig) -> Dataset:
    return _mixture("ring8", ring8_modes(), 0.01, cfg)


@DATASETS.register("grid25", "25 Gaussians on the grid {-4,-2,0,2,4}^2, sigma 0.05 (toy 2D, 25 modes)")
def grid25(cfg: DataConfig) -> Dataset:
    return _mixture("grid25", grid25_modes(), 0.05, cfg)
