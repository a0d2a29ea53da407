"""A study's space as one define-by-run function: works with Ray Tune's OptunaSearch and with plain Optuna."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genbench.sweep.params import Param


@dataclass
class DefineByRun:
    """f(trial) -> the trial's flat run dict: suggested keys (conditionals only when active) plus constants.

    A class rather than a closure so that Ray Tune can pickle the searcher into its experiment state.
    """

    space: dict[str, Param]
    constants: dict[str, Any]

    def __call__(self, trial: Any) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for key, param in self.space.items():
            if param.active(chosen):
                chosen[key] = param.suggest(trial, key)
        return {**self.constants, **chosen}
