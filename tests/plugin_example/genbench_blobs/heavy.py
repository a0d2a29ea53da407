"""The plug-in's code that needs torch: imported only when a run loads the data, builds the family or scores."""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.base import Autocast, Parts
from genbench.families.steps import Horizon, lr_schedule, optimiser, optimiser_step
from genbench.metrics.extractor_base import Extractor
from genbench.sections import DataConfig


def _squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, 4, 4) of a 2x2 square of ones at one of 9 positions, and the positions (n,)."""
    where = torch.randint(9, (n,), generator=torch.Generator().manual_seed(seed))
    images = torch.zeros(n, 1, 4, 4)
    for i, k in enumerate(where.tolist()):
        row, col = divmod(k, 3)
        images[i, 0, row : row + 2, col : col + 2] = 1.0
    return images, where


def blobs(cfg: DataConfig) -> Dataset:
    train, train_labels = _squares(cfg.n_train, 0)
    test, test_labels = _squares(cfg.n_test, 1)
    return Dataset("blobs", train, test, levels=2, train_labels=train_labels, test_labels=test_labels, num_classes=9)


class Gaussian:
    """N(mean, diag(std^2)) over the flattened values; samples are clamped to [0, 1] for images."""

    batches_per_step = 1
    sample_nfe = 1
    sampler = "one Gaussian draw"
    nll_method = None  # scores no likelihood (its density of binary images would not be comparable)

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        self.shape = data.shape
        self.net = nn.Module()
        self.net.mean = nn.Parameter(torch.zeros(data.dim))  # (D,)
        self.net.log_std = nn.Parameter(torch.full((data.dim,), math.log(cfg.model.init_std)))  # (D,)
        self.opt = optimiser(cfg.optim, self.net.parameters())
        self.horizon = Horizon(cfg.train.steps)  # the loop updates it under a compute budget
        self.sched = lr_schedule(self.opt, cfg.optim, self.horizon)
        self.grad_clip = cfg.optim.grad_clip
        self.autocast = Autocast()

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def parts(self) -> Parts:
        return Parts(modules={"net": self.net}, optimisers={"opt": self.opt}, schedulers={"sched": self.sched})

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch.flatten(1)  # (B, D)
        z = (x - self.net.mean) / self.net.log_std.exp()
        loss = (0.5 * z.pow(2) + self.net.log_std).sum(dim=1).mean() + 0.5 * x.shape[1] * math.log(2 * math.pi)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = optimiser_step(self.opt, self.grad_clip, self.sched)
        return {"train.loss": loss.detach(), "train.grad_norm": norm}

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        x = self.net.mean + self.net.log_std.exp() * torch.randn(
            n, self.net.mean.numel(), device=self.net.mean.device
        )  # (n, D)
        return x.reshape(n, *self.shape).clamp(0, 1)


def pool2(data: Dataset) -> Extractor:
    """Each image's 2x2 average pool, flattened: (N, C, H, W) -> (N, C * 4)."""
    return Extractor(
        "pool2 (blobs plug-in)",
        lambda x: nn.functional.adaptive_avg_pool2d(x, 2).flatten(1),
        dim=data.shape[0] * 4,
    )
