"""Zero-centred gradient penalty on real-fake interpolates (Thanh-Tung et al. 2019; Mescheder et al. 2018's GP)."""

from __future__ import annotations

import torch
from torch import nn

from genbench.gan import PENALTIES
from genbench.gan.penalties.base import input_grad_norm, interpolates


@PENALTIES.register("zero_gp", "zero-centred GP: E[|grad D(x_hat)|^2] on random real-fake interpolates")
def zero_gp(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return input_grad_norm(d, interpolates(real, fake)).square().mean()
