"""Activation names of the MLPs (no torch: config checks use them); genbench.nets.mlp builds each."""
from __future__ import annotations

from genbench.registry import Registry

ACTIVATIONS: Registry[str] = Registry("activation")
ACTIVATIONS.register("relu", "ReLU")("relu")
ACTIVATIONS.register("leaky_relu", "LeakyReLU with slope 0.2 (DCGAN)")("leaky_relu")
ACTIVATIONS.register("maxout", "maxout over k linear pieces (Goodfellow et al. 2013)")("maxout")
