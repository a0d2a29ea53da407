"""Importances (PED-ANOVA) score conditional keys: a real Optuna study drawn by the study's own define-by-run space,
its objectives computed from the drawn settings (no training), read back the way a sweep's summary reads them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from genbench.dashboards.figures import importances
from genbench.results.analysis import importance_method
from genbench.sweep.spec import Study, load_study
from genbench.sweep.summary import describe, param_importances, top_quantile

STUDY = """
study: guarded
family: [vae, gan]
data: {name: grid25}
objectives: [{metric: quality.modes, mode: max}, {metric: likelihood.nll, mode: min}]
budget: {trials: 80, steps: 100, eval_every: 50}
dry_run: {trials: 80, steps: 100, eval_every: 50}
search: {algorithm: random, seed: 0}
space:
  train.batch_size: {choice: [64, 128, 256]}
  vae.beta: {float: [0.1, 10.0], log: true, when: {family: [vae]}}
  gan.penalty: {choice: [none, gradient_penalty], when: {family: [gan]}}
  gan.penalty_weight: {float: [0.1, 100.0], log: true, when: {gan.penalty: [gradient_penalty]}}
"""


def _scores(run: dict[str, Any]) -> tuple[float, float]:
    """quality.modes (max): best at gan.penalty_weight 10, only GAN trials with a penalty have one worth having;
    likelihood.nll (min): best at vae.beta 1 for the VAE. train.batch_size changes neither."""
    weight, beta = run.get("gan.penalty_weight"), run.get("vae.beta")
    modes = 25.0 - 5.0 * abs(math.log10(weight) - 1.0) if weight is not None else 10.0
    nll = 1.0 + abs(math.log10(beta)) if beta is not None else 5.0
    return modes, nll


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Study, optuna.storages.BaseStorage]:
    path = tmp_path_factory.mktemp("importances") / "guarded.yaml"
    path.write_text(STUDY)
    study = load_study(str(path))
    space = study.define_by_run(study.run_settings(study.dry_run))
    storage = optuna.storages.InMemoryStorage()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = optuna.create_study(
        study_name=study.name,
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    run.optimize(lambda trial: _scores(space(trial)), n_trials=study.dry_run.trials)
    return study, storage


def test_conditional_and_family_guarded_keys_get_importances(searched: tuple[Study, Any]) -> None:
    scores = param_importances(searched[1], searched[0])
    assert set(scores) == {"quality.modes", "likelihood.nll"}
    for per_key in scores.values():
        assert set(per_key) == {"family", "train.batch_size", "vae.beta", "gan.penalty", "gan.penalty_weight"}
        assert sum(per_key.values()) == pytest.approx(1.0, abs=1e-3)
    # The `when:`-guarded weight decides quality.modes (fANOVA drops it: not in every trial); the maximised
    # objective's best trials are its highest, so a sign slip would leave the weight near 0.
    modes = scores["quality.modes"]
    assert modes["gan.penalty_weight"] > 0.1 and modes["gan.penalty_weight"] > 5 * modes["train.batch_size"]
    nll = scores["likelihood.nll"]  # the family-guarded beta decides the minimised likelihood
    assert nll["vae.beta"] > 0.1 and nll["vae.beta"] > 5 * nll["train.batch_size"]


def test_too_few_measured_trials_give_no_importances(searched: tuple[Study, Any], tmp_path: Path) -> None:
    study, _ = searched
    storage = optuna.storages.InMemoryStorage()
    run = optuna.create_study(study_name=study.name, storage=storage, directions=["maximize", "minimize"])
    space = study.define_by_run(study.run_settings(study.dry_run))
    run.optimize(lambda trial: (_scores(space(trial))[0], math.nan), n_trials=3)
    assert param_importances(storage, study) == {}
    assert top_quantile(4) == 0.5 and top_quantile(20) == 0.25 and top_quantile(200) == 0.1


def test_the_method_is_named_where_importances_are_shown() -> None:
    summary = {
        "configurations": 4,
        "runs": 4,
        "seeds": 1,
        "status": {"completed": 4},
        "objectives": [],
        "importances": {"quality.modes": {"gan.penalty_weight": 0.7, "optim.lr": 0.3}},
        "importance_method": "PED-ANOVA",
        "early_stopping": {"runs_stopped": 0},
    }
    assert "Importance for quality.modes (PED-ANOVA): gan.penalty_weight 0.70, optim.lr 0.30" in describe(
        summary, "1 s"
    )
    import pandas as pd

    table = pd.DataFrame([{"metric": "quality.modes", "param": "config.optim.lr", "importance": 1.0}])
    assert "PED-ANOVA" in importances(table, importance_method(summary)).layout.title.text
    older = {k: v for k, v in summary.items() if k != "importance_method"}  # summary.yaml of an earlier sweep
    assert "fANOVA" in importances(table, importance_method(older)).layout.title.text
