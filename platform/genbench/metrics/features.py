"""Feature-space sample quality: Frechet distance, KID, precision/recall, density/coverage (features in, floats out)."""

from __future__ import annotations

import math

import torch

from genbench.chunks import chunk_rows, split_rows

KID_SUBSETS, KID_SUBSET_SIZE = 50, 1000  # random subsets of the KID estimate and rows in each


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


def kid_subset_size(n_real: int, n_fake: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    """Rows per KID subset: the requested size, or the smaller set's size when a set is smaller."""
    return min(subset_size, n_real, n_fake)


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel inception distance: mean and std of the unbiased MMD^2 over random equal-size subsets.

    The subset count and size change the estimate's spread (and, below ~1,000 rows, its value), so runs
    record both (provenance.kid_subsets, provenance.kid_subset_size). genbench's 50 of 1,000 are the defaults
    of Binkowski et al.'s code (polynomial_mmd_averages); torchmetrics draws 100 of 1,000.
    """
    size = kid_subset_size(len(real), len(fake), subset_size)
    gen = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    values = torch.stack(
        [
            _mmd2_unbiased(
                real[torch.randperm(len(real), generator=gen)[:size]],
                fake[torch.randperm(len(fake), generator=gen)[:size]],
            )
            for _ in range(subsets)
        ]
    )
    return float(values.mean()), float(values.std()) if subsets > 1 else math.nan  # one subset: no spread


def _distance_rows(x: torch.Tensor, y: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """(rows of x, their distances to every row of y) in chunks: one (rows, len(y)) float64 matrix at a time,
    never the whole (len(x), len(y)) one (10,000 reference features would take 800 MB)."""
    return tuple((part, torch.cdist(part, y)) for part in split_rows(x, chunk_rows(8.0 * len(y))))


def _knn_radii(f: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of f (N, D) to its k-th nearest other row: (N,)."""
    # k + 1: the point itself is its own nearest neighbour
    return torch.cat([dist.kthvalue(k + 1, dim=1).values for _, dist in _distance_rows(f, f)])


def _covered(x: torch.Tensor, y: torch.Tensor, radii_y: torch.Tensor) -> torch.Tensor:
    """(len(x),) bool: each row of x lies inside the closed k-NN ball (distance <= radius) of some row of y."""
    return torch.cat([(dist <= radii_y[None, :]).any(dim=1) for _, dist in _distance_rows(x, y)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls as the manifold of each set.

    A probe on a ball's boundary counts as inside (`<=`), as in the authors' code (NVlabs stylegan2-ada-pytorch
    metrics/precision_recall.py); the prdc package uses `<`. The two differ only on exact distance ties: with
    continuous features they agree (tests/test_metric_parity.py), on duplicated features `<=` counts more.
    """
    real, fake = real.double(), fake.double()
    precision = _covered(fake, real, _knn_radii(real, k)).double().mean()
    recall = _covered(real, fake, _knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples only.

    Inside a ball means strictly closer than its radius (`<`), as in the authors' package prdc 0.2 (unlike
    precision and recall above, whose authors' code uses `<=`): the values equal prdc's on the same features.
    """
    real, fake = real.double(), fake.double()
    r_real = _knn_radii(real, k)
    inside_count, covered = real.new_zeros(()), torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for _, dist in _distance_rows(fake, real):
        inside = dist < r_real[None, :]  # (rows, N): strict, as prdc
        inside_count, covered = inside_count + inside.double().sum(), covered | inside.any(dim=0)
    return float(inside_count / (k * len(fake))), float(covered.double().mean())


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
