"""Run keys of the VAE family: its config sections, checks across them, its registration (no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.configs.optim import OptimConfig
from genbench.families.spec import FAMILIES, FamilySpec
from genbench.nets.activations import ACTIVATIONS

LIKELIHOODS = ("auto", "gaussian", "bernoulli", "categorical")
DECODER_VARS = ("learned", "predicted")
SAMPLE_MODES = ("auto", "mean", "sample")


@dataclass
class VaeConfig:
    """Encoder/decoder architecture, latent size, KL weight, decoder likelihood and IWAE bound (flat keys 'vae.*')."""

    latent_dim: int = 8  # size of the latent code z
    depth: int = 3  # hidden layers of the MLP encoder and decoder (toy data)
    width: int = 128  # units of the MLP hidden layers (toy data)
    activation: str = "relu"  # relu | leaky_relu | maxout (MLP nets)
    # 16, not 32: 32 overfits the 1,437 training digits within the default budget (test IWAE NLL 105 vs 86 nats)
    conv_width: int = 16  # channels of the first conv stage, doubled per stage (image data)
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO
    # KL warm-up (Bowman et al. 2016): the KL weight ramps linearly from 0 to beta over this fraction of
    # train.steps; without it a Gaussian decoder explains toy data by its variance alone (posterior collapse)
    kl_warmup: float = 0.2
    likelihood: str = "auto"  # auto (toy: gaussian, images: categorical) | gaussian | bernoulli | categorical
    decoder_var: str = "learned"  # Gaussian decoder variance: learned per output value, or predicted from z
    min_log_var: float = -9.0  # floor of the Gaussian decoder's log-variance (std 0.011): keeps the NLL finite
    max_log_var: float = 4.0  # ceiling of the Gaussian decoder's log-variance (std 7.4)
    iwae_k: int = 64  # importance samples of the IWAE bound reported as likelihood.nll
    # samples decode z ~ N(0, I), then: 'sample' draws from the decoder (toy: mean + Gaussian noise, the model's
    # density); 'mean' takes the decoder mean (images: expected intensity, what VAE papers show, since independent
    # per-pixel draws add salt-and-pepper noise); 'auto' is sample for vectors, mean for images
    sample_mode: str = "auto"

    def __post_init__(self) -> None:
        ACTIVATIONS.check(self.activation, key="activation")
        for key, valid in (("likelihood", LIKELIHOODS), ("decoder_var", DECODER_VARS), ("sample_mode", SAMPLE_MODES)):
            if getattr(self, key) not in valid:
                raise ConfigError(f"unknown value {getattr(self, key)!r}", key=key, fix=f"valid: {', '.join(valid)}")
        for key in ("latent_dim", "width", "conv_width", "iwae_k"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, key)}", key=key, fix="use a positive integer")
        if not 0.0 <= self.kl_warmup <= 1.0:
            raise ConfigError(
                f"must be in [0, 1], got {self.kl_warmup}",
                key="kl_warmup",
                fix="a fraction of train.steps; 0 turns the warm-up off",
            )
        if self.depth < 0:
            raise ConfigError(f"must be >= 0, got {self.depth}", key="depth", fix="0 is a linear map; 3 is typical")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ConfigError(f"must be a finite number >= 0, got {self.beta}", key="beta", fix="1.0 is the ELBO")
        if not self.min_log_var < self.max_log_var:
            raise ConfigError(
                f"must be < max_log_var={self.max_log_var}, got {self.min_log_var}",
                key="min_log_var",
                fix="e.g. min_log_var=-9, max_log_var=4",
            )


@dataclass
class VaeOptimConfig(OptimConfig):
    """The shared optimiser section (genbench.families.configs.optim) at its own defaults, over encoder and decoder.
    Its weight decay leaves out the decoder's learned log-variance (genbench.families.vae.VAE.decayed)."""


DEBUG = {"vae.width": 16, "vae.depth": 2, "vae.conv_width": 8, "vae.latent_dim": 4, "vae.iwae_k": 8}
FAMILIES.register(
    "vae", "VAE: Gaussian encoder, beta-ELBO, Gaussian / Bernoulli / categorical decoder, IWAE likelihood bound"
)(
    FamilySpec(
        "vae",
        "",
        VaeConfig,
        VaeOptimConfig,
        "genbench.families.vae:VAE",
        defaults={"train.steps": 15000, "train.batch_size": 256, "eval.every": 3000},
        debug=DEBUG,
        batched="genbench.families.vae_members:BatchedVAE",
    )
)
