"""Named weight initialisations of linear and conv layers (genbench.nets.activations.INITS lists them)."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import parametrize

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def initialise(net: nn.Module, scheme: str, std: float = 0.02) -> nn.Module:
    """Re-initialise every linear and conv layer of net in place; 'pytorch' keeps what the constructors drew."""
    if scheme == "pytorch":
        return net
    for layer in net.modules():
        if isinstance(layer, LAYERS):
            # under spectral norm the stored weight is the parametrisation's original, not layer.weight
            if parametrize.is_parametrized(layer, "weight"):
                parametrizations: Any = layer.parametrizations  # a ModuleDict; torch types it as Tensor | Module
                weight = parametrizations.weight.original
            else:
                weight = layer.weight
            nn.init.normal_(weight, 0.0, std) if scheme == "normal" else nn.init.xavier_uniform_(weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return net
