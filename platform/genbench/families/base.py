"""The family protocol that keeps the training loop generic, and the family registry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from genbench.registry import Registry

if TYPE_CHECKING:
    from genbench.config import RunConfig
    from genbench.data import Dataset


class Family(Protocol):
    """What the loop needs of a family: its modules, one optimisation step, and samples."""

    batches_per_step: int  # the loop hands train_step batch_size * batches_per_step rows

    def modules(self) -> dict[str, nn.Module]: ...

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on batch (B * batches_per_step, D); returns detached 0-dim `train.*` scalars."""
        ...

    def sample(self, n: int) -> torch.Tensor:
        """n samples in data space: (n, D)."""
        ...


@dataclass(frozen=True)
class FamilySpec:
    """A family's name, its config sections (flat keys '<name>.*' and 'optim.*') and its builder."""

    name: str
    doc: str
    model_config: type
    optim_config: type
    build: Callable[["RunConfig", "Dataset"], Family]
    check: Callable[["RunConfig"], None] = lambda cfg: None  # constraints across sections; raises ConfigError


FAMILIES: Registry[FamilySpec] = Registry("family")


def count_params(family: Family) -> int:
    return sum(p.numel() for m in family.modules().values() for p in m.parameters())


def params_finite(family: Family) -> torch.Tensor:
    """0-dim bool tensor: every parameter of every module is finite (no host sync here)."""
    flags = [torch.isfinite(p).all() for m in family.modules().values() for p in m.parameters()]
    return torch.stack(flags).all()
