"""Data sets by name: each entry builds a Dataset (tensors kept in memory) from a DataConfig."""
from __future__ import annotations

from genbench.data.base import DATASETS, Dataset, load_dataset
from genbench.data import digits as _digits  # noqa: F401  (registers digits, stacked_digits)
from genbench.data import files as _files  # noqa: F401  (registers files)
from genbench.data import downloads as _downloads  # noqa: F401  (registers mnist, fashion_mnist, cifar10, celeba)
from genbench.data import toy2d as _toy2d  # noqa: F401  (registers ring8, grid25)

__all__ = ["DATASETS", "Dataset", "load_dataset"]
