"""The Dataset record and load_dataset (the registry, torch-free, is genbench.data.DATASETS)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench.config import DataConfig
from genbench.data import DATASETS


@dataclass
class Dataset:
    """In-memory train and test splits, either vectors (N, D) or images (N, C, H, W).

    Images are float32 in [0, 1]; when they are discrete, `levels` is the number of intensity values
    (pixel = k / (levels - 1)), which likelihood families use for dequantisation and bits per dimension.
    Toy mixtures carry their mode centres and spread; labelled data carry labels and the class count.
    """

    name: str
    train: torch.Tensor  # (N, D) or (N, C, H, W)
    test: torch.Tensor  # (M, D) or (M, C, H, W)
    modes: torch.Tensor | None = None  # (K, D) mode centres of a known mixture
    sigma: float | None = None  # per-coordinate std of each mixture component
    levels: int | None = None  # discrete intensity levels of image data (17 for digits, 256 for 8-bit)
    train_labels: torch.Tensor | None = None  # (N,) int64
    test_labels: torch.Tensor | None = None  # (M,) int64
    num_classes: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (D,) or (C, H, W)."""
        return tuple(self.train.shape[1:])

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def dim(self) -> int:
        """Number of values in one example (D, or C * H * W)."""
        return int(self.train[0].numel())


def load_dataset(cfg: DataConfig) -> Dataset:
    return DATASETS.get(cfg.name, key="data.name")(cfg)
