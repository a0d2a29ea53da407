"""R1 penalty (Mescheder et al. 2018): gradient norm on real data only."""

from __future__ import annotations

import torch
from torch import nn

from genbench.gan import PENALTIES
from genbench.gan.penalties.base import input_grad_norm


@PENALTIES.register("r1", "R1: 0.5 * E[|grad D(x)|^2] on real data (weight is gamma)")
def r1(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * input_grad_norm(d, real).square().mean()
