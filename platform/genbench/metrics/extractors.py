"""Offline feature extractors for image metrics: a cached digit classifier, FID Inception from a local file, a
contrastive network learned on the data's own training split (genbench.metrics.learned), pixels."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from genbench.data.base import Dataset
from genbench.errors import ConfigError
from genbench.metrics.extractor_base import Extractor, cache_dir, cached_net
from genbench.metrics.extractor_names import BUILT_IN, EXTRACTORS
from genbench.plugins import resolve

CLASSIFIER_VERSION = 1  # bump when DigitNet or its training changes: cached weights are keyed by it
PIXELS_MAX_SIDE = 16
DIGIT_DATA = ("digits", "stacked_digits")  # the data the digit classifier was trained for


class DigitNet(nn.Module):
    """A small CNN for 8x8 digits; its 64-unit penultimate layer gives the features."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),  # (B, 16, 8, 8)
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, 4, 4)
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, 2, 2)
            nn.Flatten(),
            nn.Linear(128, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _key(train: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256(train.numpy().tobytes() + labels.numpy().tobytes())
    digest.update(f"digitnet-v{CLASSIFIER_VERSION}".encode())
    return digest.hexdigest()[:16]


def train_digit_net(train: torch.Tensor, labels: torch.Tensor, epochs: int = 30, seed: int = 0) -> DigitNet:
    """Adam with a cosine schedule on the training split (fixed seed); one-pixel shifts half of the time."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DigitNet()
    batches = -(-len(train) // 64)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * batches)
    for _ in range(epochs):
        for idx in torch.randperm(len(train), generator=gen).split(64):
            dx, dy = torch.randint(-1, 2, (2,), generator=gen).tolist()
            x = torch.roll(train[idx], shifts=(dx, dy), dims=(2, 3))  # digits are not centred identically
            loss = nn.functional.cross_entropy(net(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def digit_net(train: torch.Tensor, labels: torch.Tensor) -> DigitNet:
    """The classifier for this training split: loaded from the cache, or trained once per node and cached."""
    net = cached_net(
        cache_dir() / f"digitnet-{_key(train, labels)}.pt",
        DigitNet,
        lambda: train_digit_net(train, labels),
        "training the digit classifier",
    )
    return cast(DigitNet, net)


@torch.no_grad()
def accuracy(net: DigitNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((net(images).argmax(dim=1) == labels).double().mean())


def _per_channel(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    return lambda x: [fn(x[:, c : c + 1]) for c in range(x.shape[1])]  # each channel is one digit


def digits_extractor(
    data: Dataset,
    digits_train: torch.Tensor,
    digits_labels: torch.Tensor,
    digits_test: torch.Tensor,
    digits_test_labels: torch.Tensor,
) -> Extractor:
    """Digit classifier features; stacked digits classify each channel (1,000 classes as in stacked MNIST)."""
    net = digit_net(digits_train, digits_labels)
    name = f"digits-cnn v{CLASSIFIER_VERSION} (test accuracy {accuracy(net, digits_test, digits_test_labels):.3f})"
    feats = _per_channel(lambda x: net.body(x))
    preds = _per_channel(lambda x: net(x).argmax(dim=1))

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(feats(x), dim=1)  # (N, 64 * C)

    def classify(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            digits = preds(x)
        out = torch.zeros_like(digits[0])
        for d in digits:
            out = out * 10 + d  # (N,) class id: digits of the channels in order
        return out

    return Extractor(name, features, classify, 10 ** data.shape[0], dim=64 * data.shape[0])


def pixels_extractor(data: Dataset) -> Extractor:
    """Raw pixels (area-downsampled to at most 16x16): no learned features, and named so in every score."""
    side = min(data.shape[-1], PIXELS_MAX_SIDE)

    def features(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(x, side).flatten(1)  # (N, C * side * side)

    return Extractor(f"pixels {side}x{side} (no learned features)", features, dim=data.shape[0] * side * side)


def extractor_for(data: Dataset, features: str = "auto", inception_weights: str = "") -> Extractor:
    """The extractor `eval.features` asks for; 'auto': the digit classifier on digits, Inception where a weights
    file is present (an explicitly given path must exist), else the contrastive network learned on the data's own
    training split ('learned'); a plug-in's name, what its ExtractorSpec builds. Nothing is downloaded."""
    if features not in BUILT_IN:  # a plug-in's name (EvalConfig checked it)
        return resolve(EXTRACTORS.get(features, key="eval.features").builder)(data)
    digits = data.name in DIGIT_DATA
    if features == "classifier" and not digits:
        raise ConfigError(
            f"the digit classifier scores only {' and '.join(DIGIT_DATA)}, not {data.name!r}",
            key="eval.features",
            fix="use eval.features=auto, learned, inception or pixels",
        )
    if features == "classifier" or (features == "auto" and digits):
        from genbench.data.digits import digits_split

        return digits_extractor(data, *digits_split())
    if features in ("inception", "auto"):
        return _inception_or_learned(data, features, inception_weights)
    if features == "learned":
        return _learned(data)
    return pixels_extractor(data)


def _learned(data: Dataset) -> Extractor:
    from genbench.metrics.learned import learned_extractor

    return learned_extractor(data)


def _inception_or_learned(data: Dataset, features: str, setting: str) -> Extractor:
    from genbench.metrics import inception

    path, source = inception.weights_path(setting)
    if features == "auto" and data.shape[0] not in (1, 3):  # Inception sees grey or RGB only
        return _learned(data)
    if inception.readable(path):
        return inception.inception_extractor(data, path)
    if features == "inception" or source != inception.DEFAULT_SOURCE:  # a path given but wrong is an error
        raise inception.missing_weights(path, source, features)
    return _learned(data)
