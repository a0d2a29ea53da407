"""The optimiser section (flat keys 'optim.*') of every family but the GAN: its keys, meanings and checks; no torch.

A family subclasses OptimConfig only to change defaults: the keys and what each means are the same everywhere, so
that a study over several families compares one knob in each `config.optim.*` column. The steps that act on it are
in genbench.families.steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.sections import check_optimiser

LR_DECAYS = ("none", "cosine")


@dataclass
class OptimConfig:
    """AdamW (Adam with decoupled weight decay), a linear warm-up, then a constant or cosine learning rate."""

    lr: float = 1.0e-3  # AdamW learning rate: the schedule's peak, reached at the end of the warm-up
    beta1: float = 0.9  # Adam's decay of the gradient mean
    beta2: float = 0.999  # Adam's decay of the squared-gradient mean
    # Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step multiplies a decayed weight by
    # 1 - lr_now * weight_decay, outside Adam's normalisation (not an L2 term added to the gradient). It reaches
    # weight matrices and convolution kernels (parameters of 2 or more dimensions) only, never biases or
    # normalisation gains; a family may narrow that set (its `decayed` method says which and why)
    weight_decay: float = 0.0  # decoupled (AdamW) decay of weight matrices and kernels (ndim >= 2) only; 0 = off
    grad_clip: float = 0.0  # clip the total L2 norm of the gradients of every parameter stepped to this; 0 = off
    warmup_steps: int = 0  # steps of linear learning-rate warm-up, from lr / warmup_steps up to lr; 0 = none
    # after the warm-up: none (constant lr) | cosine (to 0 at the last step: train.steps, or the steps a compute
    # budget is expected to take)
    lr_decay: str = "none"

    def __post_init__(self) -> None:
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(
                f"unknown lr_decay {self.lr_decay!r}", key="lr_decay", fix=f"valid: {', '.join(LR_DECAYS)}"
            )
        check_optimiser(self, non_negative=("weight_decay", "grad_clip", "warmup_steps"))
