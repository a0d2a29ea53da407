"""Run keys of the autoregressive family: its config sections, checks across them, its registration (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.configs.optim import OptimConfig
from genbench.families.spec import FAMILIES, FamilySpec

COMPONENTS = ("gaussian", "logistic")  # mixture components of the continuous (vector) head
PIXEL_HEADS = ("categorical", "logistic")  # softmax over levels, or a discretised logistic mixture


@dataclass
class AutoregressiveConfig:
    """Network sizes and output heads (flat keys 'autoregressive.*'); made_* for vectors, pixel_* for images."""

    mixtures: int = 10  # K components per coordinate (vectors) or per sub-pixel (logistic pixel head)
    component: str = "gaussian"  # gaussian | logistic: the vector head's mixture components
    made_depth: int = 2  # hidden masked layers of the MADE
    made_width: int = 256  # units of each masked hidden layer of the MADE
    pixel_head: str = "categorical"  # categorical (softmax over levels) | logistic (discretised mixture)
    pixel_channels: int = 32  # PixelCNN feature maps (2h in the residual blocks); 8x8 digits need few
    pixel_blocks: int = 3  # residual blocks after the type-A layer
    first_kernel: int = 5  # type-A kernel (7 in the paper for 28x28 and up; 5 suits 8x8)
    kernel: int = 3  # type-B kernel inside the residual blocks

    def __post_init__(self) -> None:
        for key, valid in (("component", COMPONENTS), ("pixel_head", PIXEL_HEADS)):
            if getattr(self, key) not in valid:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}", key=key, fix=f"valid: {', '.join(valid)}")
        for key in ("mixtures", "made_depth", "made_width", "pixel_blocks"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, key)}", key=key, fix="use a positive integer")
        if self.pixel_channels < 6:
            raise ConfigError(
                f"must be >= 6, got {self.pixel_channels}",
                key="pixel_channels",
                fix="half the maps must split into 3 colour groups; 64 is typical",
            )
        for key in ("first_kernel", "kernel"):
            if getattr(self, key) < 1 or getattr(self, key) % 2 == 0:
                raise ConfigError(
                    f"must be odd and >= 1, got {getattr(self, key)}",
                    key=key,
                    fix="masked convolutions need a centre pixel: use 3, 5 or 7",
                )


@dataclass
class AutoregressiveOptimConfig(OptimConfig):
    """The shared optimiser section (genbench.families.configs.optim) with the exact-likelihood model's defaults."""

    lr: float = 3.0e-3  # digits: 1.88 bpd vs 1.92 at 1e-3 in 2,000 steps; grid25 indifferent
    grad_clip: float = 100.0
    lr_decay: str = "cosine"  # the late small steps sharpen the final mixture


DEBUG = {
    "autoregressive.made_width": 16,
    "autoregressive.mixtures": 3,
    "autoregressive.pixel_channels": 12,
    "autoregressive.pixel_blocks": 1,
    "autoregressive.first_kernel": 3,
}
FAMILIES.register(
    "autoregressive",
    "autoregressive: MADE + mixture heads (vectors), PixelCNN over discrete "
    "levels (images); exact likelihood, sequential sampling",
)(
    FamilySpec(
        "autoregressive",
        "",
        AutoregressiveConfig,
        AutoregressiveOptimConfig,
        "genbench.families.autoregressive:Autoregressive",
        # One evaluation, at the end: sampling is 64 sequential PixelCNN passes per digit, and two
        # evaluations of 2,500 samples took 25% of a default run on digits (genbench bench --case evaluation)
        defaults={"train.steps": 2000, "train.batch_size": 128, "eval.every": 2000},
        debug=DEBUG,
        batched="genbench.families.autoregressive_members:BatchedAutoregressive",
    )
)
