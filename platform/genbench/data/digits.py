"""scikit-learn's 8x8 handwritten digits (shipped with the package) and their 3-channel stacked variant."""

from __future__ import annotations

import torch

from genbench.data.base import Dataset
from genbench.data.names import DATASETS
from genbench.sections import DataConfig

SPLIT_SEED, STACK_SEED = 0, 1
TEST_FRACTION = 0.2  # fixed split: 1,437 training and 360 test images


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, train_labels, test, test_labels); images (N, 1, 8, 8) in [0, 1] with 17 levels."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.as_tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    labels = torch.as_tensor(raw.target, dtype=torch.int64)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = int(round(len(images) * TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


@DATASETS.register(
    "digits", "scikit-learn 8x8 handwritten digits, 1 channel, 17 levels, 10 classes (1,437 train / 360 test)"
)
def digits(cfg: DataConfig) -> Dataset:
    train, train_labels, test, test_labels = digits_split()
    return Dataset("digits", train, test, levels=17, train_labels=train_labels, test_labels=test_labels, num_classes=10)


def _stack(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(len(images), (n, 3), generator=torch.Generator().manual_seed(seed))  # (n, 3)
    stacked = images[idx].squeeze(2)  # (n, 3, 8, 8): one digit per channel
    label = labels[idx[:, 0]] * 100 + labels[idx[:, 1]] * 10 + labels[idx[:, 2]]  # 1,000 classes
    return stacked, label


@DATASETS.register(
    "stacked_digits",
    "three digits as the channels of one 8x8 image: 1,000 classes, the "
    "stacked-MNIST mode-collapse benchmark on offline data",
)
def stacked_digits(cfg: DataConfig) -> Dataset:
    train, train_labels, test, test_labels = digits_split()
    x_train, y_train = _stack(train, train_labels, cfg.n_train, STACK_SEED)  # test triples use test digits only
    x_test, y_test = _stack(test, test_labels, cfg.n_test, STACK_SEED + 1)
    return Dataset(
        "stacked_digits", x_train, x_test, levels=17, train_labels=y_train, test_labels=y_test, num_classes=1000
    )
