"""The function each Ray Tune trial runs: one in-process training run, reported in eval-sized chunks."""
from __future__ import annotations

from typing import Any

from ray import tune

from genbench.train.run import run


def trial_main(config: dict[str, Any], objectives: tuple[str, ...] = (), intermediate: bool = True) -> None:
    """Train `config`; every evaluation reports the latest quality.* and the history rows since the last report.

    `intermediate` is False when an objective is known only at the end (a cost or stability metric):
    then everything comes in the final report, which always carries `final: True`, the trial's row and
    every objective (NaN where a failed trial has none, so that Tune and Optuna record it as failed).
    """
    history: list[dict[str, Any]] = []
    latest: dict[str, float] = {}

    def report(step: int, values: dict[str, float]) -> None:
        history.append({"step": step, **values})
        evals = {f"quality.{k[5:]}": v for k, v in values.items() if k.startswith("eval.")}
        if evals and intermediate:
            latest.update(evals)
            tune.report({"step": step, **latest, "history": list(history)})
            history.clear()

    row = run(config, report)
    missing = {m: float("nan") for m in objectives if m not in row}  # a failed trial: Optuna records it as failed
    tune.report({**row, **missing, "final": True, "history": history})
