"""Activation and initialisation names of the nets (no torch: config checks use them); genbench.nets builds each."""

from __future__ import annotations

from genbench.registry import Registry

ACTIVATIONS: Registry[str] = Registry("activation")
ACTIVATIONS.register("relu", "ReLU")("relu")
ACTIVATIONS.register("leaky_relu", "LeakyReLU with slope 0.2 (DCGAN)")("leaky_relu")
ACTIVATIONS.register("maxout", "maxout over k linear pieces (Goodfellow et al. 2013)")("maxout")

# how the weights of linear and conv layers start; biases start at 0 except under "pytorch"
INITS: Registry[str] = Registry("initialisation")
INITS.register("pytorch", "PyTorch's default: Kaiming-uniform weights (a = sqrt(5)) and uniform biases")("pytorch")
INITS.register("normal", "weights ~ N(0, init_std^2), biases 0 (DCGAN: init_std 0.02)")("normal")
INITS.register("xavier", "Glorot-uniform weights, biases 0 (TensorFlow's default, used by PacGAN's and VEEGAN's code)")(
    "xavier"
)
