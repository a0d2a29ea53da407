"""The family registry: each family's name, config sections and builder, importable without torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genbench.errors import ConfigError
from genbench.plugins import FAMILIES_GROUP, expect, resolve
from genbench.registry import Registry
from genbench.sections import COMMON_SECTIONS

if TYPE_CHECKING:
    from genbench.config import RunConfig
    from genbench.data.base import Dataset
    from genbench.families.base import Family


def _no_check(cfg: RunConfig) -> None:
    return None


@dataclass(frozen=True)
class FamilySpec:
    """A family's name, its config sections (flat keys '<name>.*' and 'optim.*') and its builder.

    The builder is named ('genbench.families.gan:GAN'), not held: the sections are all that checking a run's
    keys needs, and the builder's module imports torch.
    """

    name: str
    doc: str
    model_config: type
    optim_config: type
    builder: str  # 'module:attribute' of the callable (cfg, data) -> Family
    check: Callable[[RunConfig], None] = _no_check  # constraints across sections; raises ConfigError
    defaults: dict[str, Any] = field(default_factory=dict)  # the family's default budget: {"train.steps": 5000}
    debug: dict[str, Any] = field(default_factory=dict)  # flat overrides for a debug-sized model (tests, smoke runs)
    # 'module:attribute' of the callable (member families, cfg) -> the seeds as one batched model
    # (genbench.train.members); '' when the family trains each seed on its own
    batched: str = ""

    @property
    def build(self) -> Callable[[RunConfig, Dataset], Family]:
        return resolve(self.builder)

    @property
    def build_batched(self) -> Any:
        """The batched model's class: built from (member families, cfg); its static unsupported(cfg, data) says
        why a configuration cannot batch ('' when it can)."""
        return resolve(self.batched)


def adopt(name: str, spec: Any) -> FamilySpec:
    """A plug-in family's FamilySpec, if its name can prefix run keys and its sections are dataclasses."""
    spec = expect(spec, FamilySpec, name)
    if not name.isidentifier() or name in (*COMMON_SECTIONS, "optim", "family", "seed"):
        raise ConfigError(f"'{name}' cannot name a family's keys", fix="a Python identifier other than a section's")
    if not (dataclasses.is_dataclass(spec.model_config) and dataclasses.is_dataclass(spec.optim_config)):
        raise ConfigError("model_config and optim_config must be dataclasses", fix="decorate them with @dataclass")
    return spec


# The built-in families register from genbench.families.configs; plug-ins from the entry points (docs/plugins.md).
FAMILIES: Registry[FamilySpec] = Registry("family", group=FAMILIES_GROUP, adopt=adopt)
