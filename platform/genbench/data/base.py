"""The Dataset record and load_dataset (the registry, torch-free, is genbench.data.DATASETS)."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from genbench.data.names import DATASETS
from genbench.sections import DataConfig


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


TENSORS = ("train", "test", "modes", "train_labels", "test_labels")


def to_arrays(data: Dataset) -> Dataset:
    """The same record with numpy arrays instead of tensors: what Ray's object store shares between the processes
    of a node without a copy (a tensor would be copied into every process that reads it)."""
    return dataclasses.replace(data, **{k: getattr(data, k).numpy() for k in TENSORS if getattr(data, k) is not None})


def from_arrays(data: Dataset) -> Dataset:
    """Tensors over the arrays of to_arrays, without a copy. Those of an object in Ray's object store are read-only
    shared memory: runs only read their data (batches are indexed copies), so torch's warning is silenced here."""
    arrays: dict[str, Any] = {k: getattr(data, k) for k in TENSORS if getattr(data, k) is not None}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return dataclasses.replace(data, **{k: torch.from_numpy(v) for k, v in arrays.items()})


def load_dataset(cfg: DataConfig) -> Dataset:
    return DATASETS.get(cfg.name, key="data.name")(cfg)
