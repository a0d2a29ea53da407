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
    # the families in turn (trial k trains balanced[k mod F]) instead of a searched choice: equal configurations per
    # family; Optuna's trial numbers are consecutive, also across a resumed study
    balanced: tuple[str, ...] = ()

    def __call__(self, trial: Any) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        if self.balanced:
            chosen["family"] = self.balanced[trial.number % len(self.balanced)]
            trial.set_user_attr("family", chosen["family"])
        for key, param in self.space.items():
            if key not in chosen and param.active(chosen):
                chosen[key] = param.suggest(trial, key)
        family = str(chosen.get("family", self.constants.get("family")))
        return {**self.constants, **self.by_family.get(family, {}), **chosen}
