"""A feature extractor learned offline on the data's own training split: a small contrastive CNN, trained once."""

from __future__ import annotations

import hashlib
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from genbench.data.base import Dataset
from genbench.metrics.extractor_base import Extractor, cache_dir, cached_net

VERSION = 1  # bump when the network or its training changes: cached weights are keyed by it
FEATURE_DIM = 32  # low, so that a few hundred reference images estimate the feature covariance (rank <= n - 1)
MAX_SIDE = 32  # larger images are area-downsampled first: training cost stays bounded
STEPS, BATCH, LR, TEMPERATURE, SEED = 300, 64, 3e-3, 0.2, 0
SHIFT = 2  # pixels: views differ by a shift of up to SHIFT and a horizontal flip (no resampling, no colour change)
CHUNK = 512  # images per forward when computing features


class ContrastiveNet(nn.Module):
    """Three convolutions (16, 32, 32 channels, strides 1, 2, 2), a 2x2 pool and a linear map to FEATURE_DIM;
    the projection head is used in training only (SimCLR: the representation before it transfers better)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),  # (B, 16, S, S)
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, S/2, S/2)
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),  # (B, 32, S/4, S/4)
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(128, FEATURE_DIM),
        )  # (B, FEATURE_DIM)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(FEATURE_DIM, FEATURE_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def shrink(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, S, S) with S = min(H, MAX_SIDE), area-averaged."""
    side = min(x.shape[-1], MAX_SIDE)
    return x if x.shape[-1] == side else F.adaptive_avg_pool2d(x, side)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A view of each image: shifted by up to SHIFT pixels (edge pixels repeated) and flipped half of the time.

    Views never resample or recolour pixels: features invariant to blur or colour would not see a blurry or
    off-colour generator, which is what they are meant to measure."""
    n, _, h, w = x.shape
    padded = F.pad(x, (SHIFT,) * 4, mode="replicate")  # (N, C, H + 2 SHIFT, W + 2 SHIFT); any size
    dy, dx = torch.randint(0, 2 * SHIFT + 1, (2, n), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * SHIFT)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    view = padded.gather(2, rows).gather(3, cols)  # (N, C, H, W)
    flip = torch.rand(n, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], view.flip(3), view)


def degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A worse copy of each image, a third of each kind: box-blurred (3x3 or 5x5), noised (Gaussian, std 0.02 to
    0.3) or mixed with uniform noise (weight 0.1 to 1)."""
    k = 3 if bool(torch.rand(1, generator=gen) < 0.5) else 5
    blurred = F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    std = torch.empty(len(x), 1, 1, 1).uniform_(0.02, 0.3, generator=gen)
    noised = (x + std * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    weight = torch.empty(len(x), 1, 1, 1).uniform_(0.1, 1.0, generator=gen)
    mixed = (1 - weight) * x + weight * torch.rand(x.shape, generator=gen)
    kind = torch.randint(0, 3, (len(x), 1, 1, 1), generator=gen)
    return torch.where(kind == 0, blurred, torch.where(kind == 1, noised, mixed))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """SimCLR's loss (each view picks its partner among the other views, cosine similarity / T), plus the same
    choice between its partner and the degraded copy of its own image alone.

    The degraded copies are negatives only: a view must be told from a blurred or noised copy of itself, so the
    features see sharpness and noise, which generative models differ in (instance discrimination alone is solved
    by colour and layout, and left uniform noise inside the real images' k-NN balls)."""
    z, w = F.normalize(torch.cat([z1, z2]), dim=1), F.normalize(torch.cat([worse, worse]), dim=1)  # (2B, D) each
    b = len(z1)
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    sim = torch.cat([z @ z.T, z @ w[:b].T], dim=1) / TEMPERATURE  # (2B, 3B)
    sim[:, : 2 * b].fill_diagonal_(float("-inf"))
    own = torch.stack([(z * z[partner]).sum(1), (z * w).sum(1)], dim=1) / TEMPERATURE  # (2B, 2): partner, own copy
    return F.cross_entropy(sim, partner) + F.cross_entropy(own, torch.zeros(2 * b, dtype=torch.long))


def train_contrastive(train: torch.Tensor, steps: int = 0, seed: int = SEED) -> ContrastiveNet:
    """Adam with a cosine schedule over `steps` (0: STEPS), fixed seed, on training images (N, C, H, W) shrunk
    batch by batch (a copy of the whole split at 32x32 would double a large data set's memory)."""
    steps = steps or STEPS
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = ContrastiveNet(train.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    batch = min(BATCH, len(train))
    for _ in range(steps):
        x = shrink(train[torch.randperm(len(train), generator=gen)[:batch]].float())  # (B, C, S, S)
        views = net(torch.cat([augment(x, gen), augment(x, gen), degrade(augment(x, gen), gen)]))  # (3B, D)
        loss = nt_xent(*views.split(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _key(train: torch.Tensor) -> str:
    """The cache key: the training images' bytes (hashed in place, no copy), their shape and the training recipe."""
    digest = hashlib.sha256(train.contiguous().numpy().data)
    digest.update(f"contrastive-v{VERSION} {tuple(train.shape)} {train.dtype} {STEPS} {BATCH} {SEED}".encode())
    return digest.hexdigest()[:16]


def learned_extractor(data: Dataset) -> Extractor:
    """Features of the contrastive network trained once on `data`'s training split (cached per data set)."""
    train = data.train  # (N, C, H, W)
    key = _key(train)
    net = cast(
        ContrastiveNet,
        cached_net(
            cache_dir() / f"contrastive-{key}.pt",
            lambda: ContrastiveNet(train.shape[1]),
            lambda: train_contrastive(train),
            "training the contrastive feature network",
        ),
    )
    side = min(train.shape[-1], MAX_SIDE)

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net.body(shrink(c.float())) for c in x.split(CHUNK)])  # (N, FEATURE_DIM)

    name = (
        f"learned-contrastive-cnn v{VERSION} {FEATURE_DIM}-d (SimCLR on this data's {len(train)} training "
        f"images at {side}x{side}, {STEPS} steps, seed {SEED}; cache key {key[:8]})"
    )
    return Extractor(name, features, dim=FEATURE_DIM)
