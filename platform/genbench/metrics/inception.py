"""The FID Inception-v3 (pytorch-fid's weights file layout) in plain torch, loaded from a local file, as features."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genbench.data.base import Dataset
from genbench.errors import ConfigError
from genbench.metrics.extractor_base import Extractor, cache_dir

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"
FID_SHA256_PREFIX = "6726825d"  # torch.hub names files by the first hex digits of their sha256
WEIGHTS_ENV = "GENBENCH_INCEPTION_WEIGHTS"
WEIGHTS_KEY = "eval.inception_weights"
INPUT_SIDE, FEATURE_DIM, NUM_CLASSES = 299, 2048, 1008
DEFAULT_SOURCE = "the default path in the genbench cache"
CHUNK = 64  # images per forward: activations of 64 images at 299x299 take about 1 GB


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, as TensorFlow's), ReLU: keys `conv.weight`, `bn.*`."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(x: torch.Tensor, *convs: nn.Module) -> torch.Tensor:
    for conv in convs:
        x = conv(x)
    return x


def tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 average pool: padded zeros are not counted (pytorch-fid's patch of torchvision's blocks)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (64 + 64 + 96 + pool_features channels)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, self.branch5x5_1, self.branch5x5_2),
                _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
                self.branch_pool(tf_avg_pool(x)),
            ],
            dim=1,
        )


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (384 + 96 + in_channels channels)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (4 x 192 channels)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = _chain(
            x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5
        )
        return torch.cat(
            [
                self.branch1x1(x),
                _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
                dbl,
                self.branch_pool(tf_avg_pool(x)),
            ],
            dim=1,
        )


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (320 + 192 + in_channels channels)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                _chain(x, self.branch3x3_1, self.branch3x3_2),
                _chain(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class FIDInceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches (320 + 768 + 768 + 192 = 2048 channels).

    Mixed_7b (pytorch-fid's FIDInceptionE_1) average-pools without counting padding; Mixed_7c
    (FIDInceptionE_2) max-pools, as the TensorFlow graph the FID weights come from does.
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.pool: Callable[[torch.Tensor], torch.Tensor] = (
            functools.partial(F.max_pool2d, kernel_size=3, stride=1, padding=1) if max_pool else tf_avg_pool
        )
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(dbl),
                self.branch3x3dbl_3b(dbl),
                self.branch_pool(self.pool(x)),
            ],
            dim=1,
        )


class FIDInceptionV3(nn.Module):
    """torchvision's Inception3 without the auxiliary head, 1,008 classes and pytorch-fid's FID blocks.

    Attribute names are the weights file's keys (`Conv2d_1a_3x3.conv.weight`, `Mixed_7c.branch_pool.bn.bias`,
    `fc.weight`, ...), so pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` loads with strict=True.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)  # unused for features; part of the file's layout

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 299, 299) in [-1, 1] -> (B, 2048): the final average pool, the features FID uses."""
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)  # (B, 64, 147, 147)
        x = _chain(F.max_pool2d(x, kernel_size=3, stride=2), self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        x = _chain(x, self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a)  # (B, 768, 17, 17)
        x = _chain(x, self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a)  # (B, 1280, 8, 8)
        x = _chain(x, self.Mixed_7b, self.Mixed_7c)  # (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (B, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool3(x))  # (B, 1008) logits


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, H, W) in [0, 1] -> (N, 3, 299, 299) in [-1, 1]: grey repeated to RGB, bilinear as pytorch-fid."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def weights_path(setting: str) -> tuple[Path, str]:
    """The weights file to use and where its path came from: the run key, the environment, or the cache."""
    if setting:
        return Path(setting).expanduser(), WEIGHTS_KEY
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser(), f"${WEIGHTS_ENV}"
    return cache_dir() / FID_WEIGHTS_FILE, DEFAULT_SOURCE


def readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def missing_weights(path: Path, source: str, features: str) -> ConfigError:
    return ConfigError(
        f"eval.features={features} found no readable Inception weights file at {path} (path from "
        f"{source}); genbench never downloads at run time",
        key=WEIGHTS_KEY,
        fix=f"download {FID_WEIGHTS_URL} where there is internet, copy it here and set "
        f"{WEIGHTS_KEY}=PATH or ${WEIGHTS_ENV}=PATH (or use eval.features=learned)",
    )


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """sha256 of a file, hashed once per (path, modification time, size) in this process."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _layout_problems(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    found = (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
    return [f"{len(v)} {what}, e.g. {v[0]}" for what, v in found if v]


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: never runs pickled code
    except Exception as exc:  # a truncated download, an HTML error page, a pickled model object
        raise ConfigError(
            f"cannot read {path} as a weights file ({type(exc).__name__}: {str(exc)[:200]})",
            key=WEIGHTS_KEY,
            fix=f"download {FID_WEIGHTS_URL} again",
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not a state_dict of tensors", key=WEIGHTS_KEY, fix=f"use {FID_WEIGHTS_URL}")
    return dict(state)


def load_fid_inception(path: Path) -> FIDInceptionV3:
    """The network with the file's weights (strict key and shape match), in eval mode, gradients off."""
    state, net = _read_state(path), FIDInceptionV3()
    expected = net.state_dict()
    for key in expected:  # files saved before PyTorch 0.4.1 lack these unused counters
        if key.endswith(".num_batches_tracked"):
            state.setdefault(key, expected[key])
    problems = _layout_problems(state, expected)
    if problems:
        raise ConfigError(
            f"{path} is not the FID Inception-v3 layout: {'; '.join(problems)}",
            key=WEIGHTS_KEY,
            fix=f"use pytorch-fid's {FID_WEIGHTS_URL} (torchvision's inception_v3 weights differ)",
        )
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def _cached_net(path: str, sha: str, device: str) -> FIDInceptionV3:
    return load_fid_inception(Path(path)).to(device)  # reused by every trial a worker process runs


def inception_extractor(data: Dataset, path: Path) -> Extractor:
    """Pool3 features of the FID Inception-v3, in chunks of CHUNK images, on the GPU when there is one."""
    if data.shape[0] not in (1, 3):
        raise ConfigError(
            f"Inception features need 1 or 3 channels, the data have {data.shape[0]}",
            key="eval.features",
            fix="set data.channels=3, or eval.features=pixels",
        )
    sha = sha256_of(path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = _cached_net(str(path.resolve()), sha, device)

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net.pool3(preprocess(c.to(device).float())).cpu() for c in x.split(CHUNK)])  # (N, 2048)

    return Extractor(_name(data, path, sha), features, dim=FEATURE_DIM)


def _name(data: Dataset, path: Path, sha: str) -> str:
    """The provenance of Inception scores: network, weights file and hash, feature size, input handling."""
    origin = "pytorch-fid weights" if sha.startswith(FID_SHA256_PREFIX) else "NOT the pytorch-fid release file"
    side = f"{data.shape[1]}x{data.shape[2]}"
    grey = ", grey repeated to 3 channels" if data.shape[0] == 1 else ""
    return (
        f"inception-v3-fid pool3 {FEATURE_DIM}-d ({path.name} sha256 {sha[:8]}, {origin}; "
        f"bilinear resize {side}->{INPUT_SIDE}x{INPUT_SIDE}, scaled to [-1, 1]{grey})"
    )
