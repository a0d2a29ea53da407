"""A study's space as one define-by-run function: works with Ray Tune's OptunaSearch and with plain Optuna."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genbench.sweep.params import Param


@dataclass
class DefineByRun:
    """f(trial) -> the trial's flat run dict: constants, the chosen family's fixed section, then the suggested keys
    (a conditional one only when active, so a key guarded by `when: {family: [vae]}` reaches only VAE trials).

    A class rather than a closure so that Ray Tune can pickle the searcher into its experiment state.
    """

    space: dict[str, Param]
    constants: dict[str, Any]
    by_family: dict[str, dict[str, Any]] = field(default_factory=dict)  # run keys fixed for one family's trials

    def __call__(self, trial: Any) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key, param in self.space.items():
            if param.active(chosen):
                chosen[key] = param.suggest(trial, key)
        family = str(chosen.get("family", self.constants.get("family")))
        return {**self.constants, **self.by_family.get(family, {}), **chosen}
