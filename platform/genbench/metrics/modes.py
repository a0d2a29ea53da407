"""Mode coverage of a known mixture by the standard toy-GAN protocol (Srivastava et al. 2017, VEEGAN)."""

from __future__ import annotations

import math

import torch

HQ_SIGMAS = 3.0  # a sample is high quality when within 3 sigma of its nearest mode


def mode_metrics(samples: torch.Tensor, modes: torch.Tensor, sigma: float) -> dict[str, float]:
    """quality.modes, quality.hq_fraction and quality.mode_kl of samples (N, D) against modes (K, D).

    A mode is covered when at least one high-quality sample lies nearest to it. mode_kl is the reverse
    KL of the histogram of high-quality samples over modes against uniform: KL(p_hq || U) = log K - H(p_hq);
    it is 0 for a perfectly even spread, log K for one mode, and NaN when no sample is high quality.
    Non-finite samples count as low quality.
    """
    samples = samples.detach().to(torch.float32)
    dist = torch.cdist(samples, modes.to(samples))  # (N, K)
    dist = torch.nan_to_num(dist, nan=math.inf)
    nearest_dist, nearest = dist.min(dim=1)  # (N,)
    hq = nearest_dist <= HQ_SIGMAS * sigma
    counts = torch.bincount(nearest[hq], minlength=len(modes)).double()  # (K,)
    n_hq = counts.sum().item()
    result = {"modes": float((counts > 0).sum().item()), "hq_fraction": n_hq / max(len(samples), 1)}
    if n_hq == 0:
        result["mode_kl"] = math.nan
        return result
    p = counts / n_hq
    nz = p > 0
    result["mode_kl"] = float((p[nz] * (p[nz] * len(modes)).log()).sum().item())
    return result
