"""WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017) on real-fake interpolates."""

from __future__ import annotations

import torch
from torch import nn

from genbench.gan import PENALTIES
from genbench.gan.penalties.base import input_grad_norm, interpolates


@PENALTIES.register("gradient_penalty", "WGAN-GP: E[(|grad D(x_hat)| - 1)^2] on random real-fake interpolates")
def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return (input_grad_norm(d, interpolates(real, fake)) - 1).square().mean()
