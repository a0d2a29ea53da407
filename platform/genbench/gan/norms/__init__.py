"""Discriminator layer normalisations by name: each wraps one linear or conv layer."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genbench.gan import NORMS


@NORMS.register("none", "plain layers")
def none(layer: nn.Module) -> nn.Module:
    return layer


@NORMS.register("spectral_norm", "spectral normalisation of every D layer, one power iteration (Miyato et al. 2018)")
def spectral_norm(layer: nn.Module) -> nn.Module:
    return _spectral_norm(layer)
