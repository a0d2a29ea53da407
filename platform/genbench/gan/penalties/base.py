"""The penalty interface and the gradient-norm helper the penalties share."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# penalty(discriminator, real (B, D), fake (B, D)) -> 0-dim tensor, before its weight is applied
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def input_grad_norm(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample norm of dD(x)/dx, kept in the graph so the penalty can be backpropagated: (B,)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """A random point on the segment between each real and fake sample (WGAN-GP's x_hat): (B, ...)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)  # (B, 1, ...)
    return eps * real + (1 - eps) * fake.detach()
