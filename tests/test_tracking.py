"""Trackers (`tracking:`): the study key is validated like the others, and what a tracker is fed of a trial's report
(the Ray run that writes TensorBoard and MLflow records is in tests/test_sweep_ray.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from genbench.errors import ConfigError
from genbench.sweep.spec import study_from_dict
from genbench.sweep.tracking import check_installed, scalar_results

STUDY: dict[str, Any] = {
    "study": "tracked",
    "family": "gan",
    "data": {"name": "ring8"},
    "objectives": [{"metric": "quality.modes", "mode": "max"}],
    "budget": {"trials": 2, "steps": 20, "eval_every": 10},
    "dry_run": {"trials": 2, "steps": 20, "eval_every": 10},
    "space": {"gan.loss": {"choice": ["hinge", "non_saturating"]}},
}


def test_tracking_keeps_the_trackers_asked_for_with_their_options() -> None:
    tracking = {"tensorboard": True, "mlflow": {"tracking_uri": "sqlite:///m.db"}, "wandb": False}
    assert study_from_dict({**STUDY, "tracking": tracking}).tracking == {
        "tensorboard": {},
        "mlflow": {"tracking_uri": "sqlite:///m.db"},
    }
    assert study_from_dict(STUDY).tracking == {}


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        ({"tensorbord": True}, "tracking.tensorbord: unknown tracker (did you mean 'tensorboard'?)"),
        ({"mlflow": {"uri": "x"}}, "tracking.mlflow.uri: unknown option"),
        ({"wandb": {"mode": "offlne"}}, "tracking.wandb.mode: unexpected value 'offlne' (one of online, offline"),
        ({"mlflow": {"tags": ["a"]}}, "tracking.mlflow.tags: unexpected value ['a'] (a dict)"),
        ({"tensorboard": "yes"}, "tracking.tensorboard: expected true, false or a mapping, got 'yes'"),
        (["tensorboard"], "tracking: expected a mapping"),
    ],
)
def test_a_bad_tracking_key_is_one_error_naming_it(tracking: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        study_from_dict({**STUDY, "tracking": tracking})
    assert f"study dict: {message}" in str(err.value)


def test_a_tracker_whose_package_is_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genbench.sweep.tracking.PACKAGES", {"wandb": "no_such_package_xyz"})
    with pytest.raises(ConfigError, match="tracking.wandb: .*pip install no_such_package_xyz, or remove tracking"):
        check_installed({"wandb": {}})


def test_a_report_becomes_each_history_step_then_its_own_metrics_as_scalars() -> None:
    report = {
        "training_iteration": 2,
        "step": 20,
        "quality.modes": 7.0,
        "likelihood.nll": math.nan,  # not measured yet: left out
        "time_this_iter_s": 1.5,  # Ray's own: left out
        "history": [
            {"seed": 0, "step": 10, "train.loss_d": 1.2, "train.loss_g": 0.7},
            {"seed": 0, "step": 20, "train.loss_d": 1.1, "eval.modes": 7.0, "trial_id": "x"},
        ],
        "partial_rows": [{"seed": 0, "cost.wall_s": 3.0}],
    }
    assert list(scalar_results(report, seeds=1)) == [
        {"training_iteration": 2, "timesteps_total": 10, "train.loss_d": 1.2, "train.loss_g": 0.7},
        {"training_iteration": 2, "timesteps_total": 20, "train.loss_d": 1.1, "eval.modes": 7.0},
        {"training_iteration": 2, "timesteps_total": 20, "quality.modes": 7.0},
    ]
    two = {**report, "history": [{"seed": 3, "step": 10, "train.loss_d": 1.0}, {"seed": 4, "step": 10}]}
    assert next(scalar_results(two, seeds=2)) == {
        "training_iteration": 2,
        "timesteps_total": 10,
        "seed_3/train.loss_d": 1.0,
    }
