"""The plug-in's specs: names, keys and defaults only (no torch), so that genbench checks a study without torch."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.configs.optim import OptimConfig
from genbench.families.spec import FamilySpec
from genbench.plugins import DatasetSpec, ExtractorSpec


@dataclass
class GaussianConfig:
    """A diagonal Gaussian over the data's values (flat keys 'gaussian.*')."""

    init_std: float = 0.5  # the standard deviation every value starts from

    def __post_init__(self) -> None:
        if not self.init_std > 0:
            raise ConfigError(f"must be > 0, got {self.init_std}", key="init_std", fix="e.g. 0.5")


@dataclass
class GaussianOptimConfig(OptimConfig):
    """genbench's shared optim.* section, with a larger default learning rate."""

    lr: float = 0.05


BLOBS = DatasetSpec(
    "blobs", "4x4 grey images of one 2x2 bright square in 9 positions (9 classes)", "genbench_blobs.heavy:blobs"
)
GAUSSIAN = FamilySpec(
    "gaussian",
    "diagonal Gaussian fitted by maximum likelihood (example plug-in)",
    GaussianConfig,
    GaussianOptimConfig,
    "genbench_blobs.heavy:Gaussian",
    defaults={"train.steps": 200, "eval.every": 100},
    debug={"train.steps": 4},
)
POOL2 = ExtractorSpec("pool2", "2x2 average-pooled pixels (example plug-in)", "genbench_blobs.heavy:pool2")
