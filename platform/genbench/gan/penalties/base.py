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
