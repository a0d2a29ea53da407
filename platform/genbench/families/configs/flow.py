"""Run keys of the normalizing-flow family: its config sections, checks across them, its registration (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.configs.optim import OptimConfig
from genbench.families.spec import FAMILIES, FamilySpec
from genbench.sections import RunConfig


@dataclass
class FlowConfig:
    """Flow architecture (flat keys 'flow.*'): MLP couplings for vectors, a multi-scale conv flow for images."""

    couplings: int = 6  # vectors: coupling layers in all; images: per scale, half checkerboard, half channel-wise
    hidden: int = 128  # vectors: units of each coupling's MLP conditioner
    conv_hidden: int = 32  # images: channels of each coupling's conv conditioner
    depth: int = 3  # hidden layers of each conditioner
    invconv: bool = True  # a learned LU-decomposed 1x1 convolution (invertible linear map) before each coupling
    scales: int = 2  # images: multi-scale levels; each halves H and W, so both must divide by 2**scales
    logit: bool = True  # images: model logit(alpha + (1 - 2 alpha) y) rather than the dequantised y in [0, 1]
    alpha: float = 0.05  # images: keeps the logit away from +-inf at y = 0 and 1 (RealNVP's value)

    def __post_init__(self) -> None:
        for key in ("couplings", "hidden", "conv_hidden", "depth", "scales"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, key)}", key=key, fix="use a positive integer")
        if self.couplings < 2:
            raise ConfigError(
                f"must be >= 2, got {self.couplings}",
                key="couplings",
                fix="each entry is transformed only by every other coupling; use 2 or more",
            )
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"must be in (0, 0.5), got {self.alpha}", key="alpha", fix="0.05 is RealNVP's value")


@dataclass
class FlowOptimConfig(OptimConfig):
    """The shared optimiser section (genbench.families.configs.optim) with the flow's defaults. Its weight decay
    reaches the coupling conditioners' weights only (genbench.families.flow.Flow.decayed says why)."""

    lr: float = 2.0e-3
    grad_clip: float = 100.0
    warmup_steps: int = 100  # Adam's first steps are otherwise large and noisy
    lr_decay: str = "cosine"  # sharp modes need small late steps


def check_run(cfg: RunConfig) -> None:
    """ActNorm's data-dependent initialisation needs a per-channel variance of the first batch."""
    if cfg.train.batch_size < 2:
        raise ConfigError(
            f"must be >= 2 for the flow, got {cfg.train.batch_size}",
            key="train.batch_size",
            fix="ActNorm initialises from the first batch's statistics; use 64 or more",
        )


DEBUG = {"flow.couplings": 4, "flow.hidden": 16, "flow.conv_hidden": 8, "flow.depth": 1}
FAMILIES.register(
    "flow",
    "Normalizing flow: RealNVP affine couplings (bounded log-scale), ActNorm, LU 1x1 convs, "
    "multi-scale for images; exact likelihood",
)(
    FamilySpec(
        "flow",
        "",
        FlowConfig,
        FlowOptimConfig,
        "genbench.families.flow:Flow",
        check_run,
        defaults={"train.steps": 4000, "train.batch_size": 256, "eval.every": 1000},
        debug=DEBUG,
        batched="genbench.families.flow_members:BatchedFlow",
    )
)
