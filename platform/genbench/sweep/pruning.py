"""What the searcher learns of a trial the scheduler stopped: Optuna records it as pruned, not as a finished one."""

from __future__ import annotations

from typing import Any


def stopped_as_pruned(base: type) -> type:
    """Ray's OptunaSearch (`base`), except that a trial ending without its final report (ASHA stopped it) is told to
    Optuna as PRUNED: its last evaluation is a partial score, and as a COMPLETE value TPE would take it for what
    the configuration reaches, and importances (finished trials only) would rank settings by it. OptunaSearch
    tells a trial that ends with no value and no error as pruned; Optuna keeps the intermediate values it was given
    (TPE ranks a pruned trial by its last one, below the finished trials)."""

    class StoppedAsPruned(base):
        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
            if result is not None and not error and not result.get("final"):
                result = None
            super().on_trial_complete(trial_id, result=result, error=error)

    StoppedAsPruned.__name__ = StoppedAsPruned.__qualname__ = base.__name__
    return StoppedAsPruned
