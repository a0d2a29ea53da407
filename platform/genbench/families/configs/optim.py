"""The one optimiser section (flat keys 'optim.*') of every family but the GAN: its keys, meanings and checks (no torch).

A family subclasses OptimConfig only to change defaults: the keys and what each means are the same everywhere, so
that a study over several families compares one knob in each `config.optim.*` column. The steps that act on it are
in genbench.families.steps.
"""
from __future__ import annotations

from dataclasses import dataclass

from genbench.config import check_optimiser
from genbench.errors import ConfigError

LR_DECAYS = ("none", "cosine")


@dataclass
class OptimConfig:
    """AdamW (Adam with decoupled weight decay), a linear warm-up, then a constant or cosine learning rate."""

    lr: float = 1.0e-3  # AdamW learning rate after the warm-up (the peak of the schedule)
    beta1: float = 0.9  # Adam's decay of the gradient mean
    beta2: float = 0.999  # Adam's decay of the squared-gradient mean
    # Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step shrinks a weight by lr * weight_decay
    # times itself, outside Adam's normalisation; it acts on weight matrices and convolution kernels (parameters
    # with 2 or more dimensions) only, never on biases or normalisation gains, and a family may narrow that set
    weight_decay: float = 0.0  # decoupled (AdamW) decay of the weight matrices and kernels (ndim >= 2); 0 = off
    grad_clip: float = 0.0  # max total L2 norm of the gradient (every parameter stepped, before clipping); 0 = off
    warmup_steps: int = 0  # steps of linear learning-rate warm-up, from lr / warmup_steps to lr; 0 = none
    lr_decay: str = "none"  # after the warm-up: none (constant) | cosine (to 0 at train.steps)

    def __post_init__(self) -> None:
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(f"unknown lr_decay {self.lr_decay!r}", key="lr_decay",
                              fix=f"valid: {', '.join(LR_DECAYS)}")
        check_optimiser(self, non_negative=("weight_decay", "grad_clip", "warmup_steps"))
