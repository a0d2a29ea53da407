"""Named GAN variants from the literature, as data: flat overrides of the 'gan.*' and 'optim.*' keys."""

from __future__ import annotations

from typing import Any

GAN_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "gan": ("Goodfellow et al. 2014, non-saturating loss", {"gan.loss": "non_saturating"}),
    "wgan": (
        "Arjovsky et al. 2017: Wasserstein critic, weight clipping 0.01, 5 critic steps",
        {"gan.loss": "wasserstein", "gan.penalty": "none", "gan.d_steps": 5, "gan.clip": 0.01},
    ),
    "wgan_gp": (
        "Gulrajani et al. 2017: Wasserstein critic, gradient penalty 10, 5 critic steps, Adam(0.5, 0.9)",
        {
            "gan.loss": "wasserstein",
            "gan.penalty": "gradient_penalty",
            "gan.penalty_weight": 10.0,
            "gan.d_steps": 5,
            "optim.beta1_g": 0.5,
            "optim.beta2_g": 0.9,
            "optim.beta1_d": 0.5,
            "optim.beta2_d": 0.9,
        },
    ),
    "lsgan": ("Mao et al. 2017: least-squares loss", {"gan.loss": "least_squares"}),
    "sngan": ("Miyato et al. 2018: spectral norm on D, hinge loss", {"gan.loss": "hinge", "gan.spectral_norm": True}),
    "r1gan": (
        "Mescheder et al. 2018: non-saturating loss with R1 penalty",
        {"gan.loss": "non_saturating", "gan.penalty": "r1", "gan.penalty_weight": 1.0},
    ),
    "pacgan": (
        "Lin et al. 2018: the discriminator sees 2 packed samples",
        {"gan.loss": "non_saturating", "gan.pack": 2},
    ),
    "ttur": (
        "Heusel et al. 2017: discriminator learns 4x faster than the generator",
        {"optim.lr_g": 1.0e-4, "optim.lr_d": 4.0e-4},
    ),
}
