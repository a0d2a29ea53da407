"""What every feature extractor is (Extractor) and the per-node cache of the networks that extractors train once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genbench.atomic import building, replace_durably


@dataclass
class Extractor:
    """Features (and, for labelled data, class predictions) of images (N, C, H, W) in [0, 1]."""

    name: str  # recorded with every score, e.g. 'digits-cnn v1 (test accuracy 0.981)'
    features: Callable[[torch.Tensor], torch.Tensor]  # (N, C, H, W) -> (N, F)
    classify: Callable[[torch.Tensor], torch.Tensor] | None = None  # (N, C, H, W) -> (N,) class ids
    num_classes: int = 0
    dim: int = 0  # F, the feature dimension: what a reference set's size is judged against (provenance.feature_dim)


def cache_dir() -> Path:
    return Path(os.environ.get("GENBENCH_CACHE", Path.home() / ".cache" / "genbench"))


def cached_net(path: Path, fresh: Callable[[], nn.Module], train: Callable[[], nn.Module], what: str) -> nn.Module:
    """The network stored at `path` (its weights loaded into `fresh()`), or `train()`ed once per node and stored.

    Trials that start together on a node take turns on a lock beside the file: one trains, the others load it.
    """
    if not path.exists():
        with building(path, what):
            if not path.exists():  # else another process trained it while this one waited
                return _train_and_cache(path, train)
    with torch.random.fork_rng():  # fresh() draws initial weights the load replaces: the caller's stream stays put,
        net = fresh()  # as it does when the network is trained here, so that a run's noise is the same either way
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def _train_and_cache(path: Path, train: Callable[[], nn.Module]) -> nn.Module:
    """Train the network and write it to `path` durably; the caller holds the lock beside `path`."""
    for stale in path.parent.glob(f".{path.name}.*"):  # a killed trainer's temporary file: only the holder writes one
        stale.unlink(missing_ok=True)
    net = train()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    torch.save(net.state_dict(), tmp)
    replace_durably(tmp, path)  # after a crash: no file, or the whole one
    return net
