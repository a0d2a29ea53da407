"""Feature-space sample quality: Frechet distance, KID, precision/recall, density/coverage (features in, floats out)."""
from __future__ import annotations

import math

import torch


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.double()
    mu = f.mean(dim=0)
    centred = f - mu
    return mu, centred.T @ centred / (len(f) - 1)  # (D,), (D, D)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to (N, D) and (M, D) features.

    tr((S_r S_f)^(1/2)) is the sum of square roots of the eigenvalues of S_r^(1/2) S_f S_r^(1/2), which is
    symmetric positive semi-definite, so no complex matrix square root is needed (unlike scipy.linalg.sqrtm).
    """
    mu_r, cov_r = _mean_cov(real)
    mu_f, cov_f = _mean_cov(fake)
    evals, evecs = torch.linalg.eigh(cov_r)
    sqrt_r = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    inner = torch.linalg.eigvalsh(sqrt_r @ cov_f @ sqrt_r).clamp(min=0).sqrt().sum()
    fd = (mu_r - mu_f).square().sum() + cov_r.trace() + cov_f.trace() - 2 * inner
    return float(fd.clamp(min=0))


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3  # the KID kernel of Binkowski et al. 2018


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    m = len(x)
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    off = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return off - 2 * k_xy.mean()


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance: mean and std of the unbiased MMD^2 over random equal-size subsets."""
    size = min(subset_size, len(real), len(fake))
    gen = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    values = torch.stack([_mmd2_unbiased(real[torch.randperm(len(real), generator=gen)[:size]],
                                         fake[torch.randperm(len(fake), generator=gen)[:size]])
                          for _ in range(subsets)])
    return float(values.mean()), float(values.std())


def _knn_radii(f: torch.Tensor, k: int) -> torch.Tensor:
    dist = torch.cdist(f, f)  # (N, N)
    return dist.kthvalue(k + 1, dim=1).values  # +1: the point itself is its own nearest neighbour


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls as the manifold of each set."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = torch.cdist(fake, real)  # (M, N)
    precision = (d <= r_real[None, :]).any(dim=1).double().mean()
    recall = (d.T <= r_fake[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples only."""
    real, fake = real.double(), fake.double()
    r_real = _knn_radii(real, k)
    inside = torch.cdist(fake, real) <= r_real[None, :]  # (M, N)
    density = inside.double().sum() / (k * len(fake))
    coverage = inside.any(dim=0).double().mean()
    return float(density), float(coverage)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance: mean over random unit directions of the 1D W1 between projections."""
    n = min(len(x), len(y))
    gen = torch.Generator().manual_seed(seed)
    x = x.double()[torch.randperm(len(x), generator=gen)[:n]]
    y = y.double()[torch.randperm(len(y), generator=gen)[:n]]
    dirs = torch.randn(x.shape[1], projections, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)  # (D, P) unit columns
    px, py = (x @ dirs).sort(dim=0).values, (y @ dirs).sort(dim=0).values  # (n, P)
    value = (px - py).abs().mean()
    return float(value) if math.isfinite(float(value)) else math.nan
