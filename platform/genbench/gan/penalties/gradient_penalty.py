"""WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017) on real-fake interpolates."""
from __future__ import annotations

import torch
from torch import nn

from genbench.gan import PENALTIES
from genbench.gan.penalties.base import input_grad_norm


@PENALTIES.register("gradient_penalty", "WGAN-GP: E[(|grad D(x_hat)| - 1)^2] on random real-fake interpolates")
def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)  # (B, 1, ...)
    x_hat = eps * real + (1 - eps) * fake.detach()
    return (input_grad_norm(d, x_hat) - 1).square().mean()
