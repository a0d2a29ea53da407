"""The Dataset record and the dataset registry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from genbench.config import DataConfig
from genbench.registry import Registry


@dataclass
class Dataset:
    """In-memory train and test splits; toy mixtures also carry their mode centres and spread."""

    name: str
    train: torch.Tensor  # (N, D)
    test: torch.Tensor  # (M, D)
    modes: torch.Tensor | None = None  # (K, D) mode centres of a known mixture
    sigma: float | None = None  # per-coordinate std of each mixture component

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])


DATASETS: Registry[Callable[[DataConfig], Dataset]] = Registry("dataset")


def load_dataset(cfg: DataConfig) -> Dataset:
    return DATASETS.get(cfg.name, key="data.name")(cfg)
