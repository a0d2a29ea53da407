"""What Optuna learns of a trial through Ray's OptunaSearch: a trial stopped before its final report is pruned."""

from __future__ import annotations

import optuna
from ray.tune.search.optuna import OptunaSearch

from genbench.sweep.pruning import stopped_as_pruned


def test_a_trial_stopped_before_its_final_report_is_pruned_a_finished_one_complete() -> None:
    study = optuna.create_study(direction="maximize")
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    search = stopped_as_pruned(OptunaSearch)(space, metric="quality.modes", mode="max", study_name="s")
    search._ot_study = study  # the in-memory study, to read back what it was told
    for trial_id in ("stopped", "finished", "failed"):
        search.suggest(trial_id)
    search.on_trial_result("stopped", {"quality.modes": 3.0, "training_iteration": 1})
    search.on_trial_complete("stopped", {"quality.modes": 3.0, "step": 30})  # ASHA stopped it: no `final`
    search.on_trial_complete("finished", {"quality.modes": 7.0, "step": 90, "final": True})
    search.on_trial_complete("failed", None, error=True)
    stopped, finished, failed = study.get_trials(deepcopy=False)
    # Optuna gives a pruned trial its last intermediate value, by which TPE ranks it below the finished ones
    assert stopped.state == optuna.trial.TrialState.PRUNED and stopped.intermediate_values == {1: 3.0}
    assert finished.state == optuna.trial.TrialState.COMPLETE and finished.values == [7.0]
    assert failed.state == optuna.trial.TrialState.FAIL
