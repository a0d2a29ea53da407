"""Run keys of the GAN family: its config sections, checks across them, its registration (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.spec import FAMILIES, FamilySpec
from genbench.gan import GAN_LOSSES, PENALTIES
from genbench.nets.activations import ACTIVATIONS, INITS
from genbench.sections import RunConfig, check_optimiser

ARCHS = ("auto", "dirac")
PACK_CONVENTIONS = ("split", "pacgan")


@dataclass
class GanConfig:
    """Generator and discriminator architecture and the adversarial game (flat keys 'gan.*')."""

    latent_dim: int = 8  # size of the generator's noise input z ~ N(0, I)
    conv_width: int = 32  # images: channels of the first D layer and the last G layer (DCGAN)
    g_depth: int = 3  # hidden layers (MLP, toy data)
    g_width: int = 128  # units of the generator's hidden layers (MLP)
    d_depth: int = 3  # hidden layers of the discriminator (MLP)
    d_width: int = 128  # units of the discriminator's hidden layers (MLP)
    arch: str = "auto"  # auto: MLPs for vectors, DCGAN for images | dirac: G(z) = theta, D(x) = psi * x (1-D data)
    activation: str = "relu"  # relu | leaky_relu | maxout, of both MLPs unless g_activation / d_activation say
    g_activation: str = ""  # the generator MLP's activation; empty: activation
    d_activation: str = ""  # the discriminator MLP's activation (PacGAN and VEEGAN: maxout in D, ReLU in G)
    init: str = "pytorch"  # pytorch | normal | xavier: how linear and conv weights start (genbench list inits)
    init_std: float = 0.02  # std of init=normal
    maxout_k: int = 2  # pieces per maxout unit
    g_batch_norm: bool = False  # batch norm after each hidden layer of G
    d_batch_norm: bool = False  # batch norm after each hidden layer of D
    loss: str = "non_saturating"  # adversarial loss (genbench list gan-variants)
    penalty: str = "none"  # none | gradient_penalty (WGAN-GP) | r1, on the discriminator
    penalty_weight: float = 10.0  # weight of the penalty (gamma for r1)
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer
    d_steps: int = 1  # discriminator steps per generator step
    ema: float = 0.0  # decay of the generator's weight average used for sampling; 0 = off
    pack: int = 1  # PacGAN: D sees `pack` samples concatenated (1..4)
    pack_convention: str = "split"  # split: train.batch_size samples make batch_size / pack packed examples |
    # pacgan: batch_size packed examples, pack x batch_size samples per D and G step (PacGAN's released code)
    clip: float = 0.01  # critic weight clipping for 'wasserstein' when no penalty or spectral norm

    def __post_init__(self) -> None:
        for key, registry in (
            ("loss", GAN_LOSSES),
            ("penalty", PENALTIES),
            ("activation", ACTIVATIONS),
            ("init", INITS),
        ):
            registry.check(getattr(self, key), key=key)
        for key in ("g_activation", "d_activation"):
            if getattr(self, key):
                ACTIVATIONS.check(getattr(self, key), key=key)
        for key, valid in (("arch", ARCHS), ("pack_convention", PACK_CONVENTIONS)):
            if getattr(self, key) not in valid:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}", key=key, fix=f"valid: {' | '.join(valid)}")
        if self.init_std <= 0:
            raise ConfigError(f"must be > 0, got {self.init_std}", key="init_std", fix="DCGAN uses 0.02")
        for key in ("latent_dim", "g_width", "d_width", "d_steps", "maxout_k", "conv_width"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, key)}", key=key, fix="use a positive integer")
        if not 1 <= self.pack <= 4:
            raise ConfigError(f"must be 1..4, got {self.pack}", key="pack", fix="PacGAN packs 1 to 4 samples")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"must be in [0, 1), got {self.ema}", key="ema", fix="0 turns EMA off; 0.999 is typical")
        if self.penalty_weight < 0:
            raise ConfigError(f"must be >= 0, got {self.penalty_weight}", key="penalty_weight")
        if self.clip <= 0:
            raise ConfigError(f"must be > 0, got {self.clip}", key="clip", fix="0.01 is the WGAN paper's value")


@dataclass
class GanOptimConfig:
    """Separate Adam settings for G and D (two time-scale updates are a choice of lr_g != lr_d)."""

    lr_g: float = 2.0e-4
    lr_d: float = 2.0e-4
    beta1_g: float = 0.5
    beta2_g: float = 0.999
    beta1_d: float = 0.5
    beta2_d: float = 0.999

    def __post_init__(self) -> None:
        check_optimiser(self, lrs=("lr_g", "lr_d"), betas=("beta1_g", "beta2_g", "beta1_d", "beta2_d"), non_negative=())


def check_run(cfg: RunConfig) -> None:
    """Constraints across sections: PacGAN packs whole batches."""
    if cfg.model.arch == "dirac" and cfg.model.pack != 1:
        raise ConfigError(
            f"the Dirac-GAN's critic has one weight, got gan.pack={cfg.model.pack}",
            key="gan.pack",
            fix="use gan.pack: 1 with gan.arch: dirac",
        )
    if cfg.model.pack_convention == "split" and cfg.train.batch_size % cfg.model.pack:
        raise ConfigError(
            f"{cfg.train.batch_size} is not divisible by gan.pack={cfg.model.pack}",
            key="train.batch_size",
            fix="use a batch size that is a multiple of gan.pack, or gan.pack_convention: pacgan "
            "(batch_size packed examples of pack samples each)",
        )


DEBUG = {"gan.g_width": 16, "gan.d_width": 16, "gan.g_depth": 2, "gan.d_depth": 2, "gan.conv_width": 8}
FAMILIES.register(
    "gan",
    "GAN: adversarial generator vs discriminator (MLP or DCGAN); losses, penalties, spectral norm, TTUR, EMA, PacGAN",
)(
    FamilySpec(
        "gan",
        "",
        GanConfig,
        GanOptimConfig,
        "genbench.families.gan:GAN",
        check_run,
        debug=DEBUG,
        batched="genbench.families.gan_members:BatchedGAN",
    )
)
