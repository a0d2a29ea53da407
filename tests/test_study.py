"""Study files: every shipped search space loads; broken ones name the file and key; the space runs in Optuna."""

from __future__ import annotations

import pickle
from pathlib import Path

import optuna
import pytest

from genbench.config import from_flat
from genbench.errors import ConfigError
from genbench.shipped import STUDIES
from genbench.sweep.space import DefineByRun
from genbench.sweep.spec import Study, load_study

ROOT = Path(__file__).resolve().parents[1]
SPACES = sorted(STUDIES.glob("*.yaml"))

BASE = """\
study: tiny
family: gan
data: {name: grid25}
objectives:
  - {metric: quality.modes, mode: max}
budget: {trials: 4, steps: 100, eval_every: 50}
dry_run: {trials: 2, steps: 10}
fixed:
  train.batch_size: 64
space:
  gan.loss: {choice: [non_saturating, hinge]}
  gan.penalty: {choice: [none, gradient_penalty, r1]}
  gan.penalty_weight: {float: [0.1, 100.0], log: true, when: {gan.penalty: [gradient_penalty, r1]}}
  optim.lr_g: {float: [1.0e-5, 1.0e-2], log: true}
  gan.d_steps: {int: [1, 3]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_search_spaces_exist() -> None:
    assert SPACES


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_shipped_search_space_loads(path: Path) -> None:
    study = load_study(path)
    assert study.name and study.space and study.objectives
    assert study.dry_run.steps <= study.budget.steps and study.dry_run.trials <= study.budget.trials
    from_flat(study.run_settings(study.dry_run))


def test_base_study(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, BASE))
    assert list(study.space) == ["gan.loss", "gan.penalty", "gan.penalty_weight", "optim.lr_g", "gan.d_steps"]
    assert study.space["gan.penalty_weight"].when == {"gan.penalty": ["gradient_penalty", "r1"]}
    assert study.dry_run.eval_every == 1 and study.budget.eval_every == 50
    assert study.run_settings(study.dry_run)["train.steps"] == 10
    assert study.fixed == {"data.name": "grid25", "train.batch_size": 64}


BROKEN = {  # name: (old, new, text the message must name besides the file)
    "top_level_key": ("budget:", "budjet:", ["budjet", "did you mean 'budget'"]),
    "space_key": ("  gan.loss:", "  gan.los:", ["gan.los", "did you mean 'gan.loss'"]),
    "inverted_range": ("[1.0e-5, 1.0e-2]", "[1.0e-2, 1.0e-5]", ["optim.lr_g", "inverted"]),
    "log_low_zero": ("[1.0e-5, 1.0e-2]", "[0.0, 1.0e-2]", ["optim.lr_g", "log"]),
    "empty_choice": ("[non_saturating, hinge]", "[]", ["gan.loss", "choice"]),
    "when_not_above": ("when: {gan.penalty:", "when: {optim.lr_g:", ["gan.penalty_weight", "optim.lr_g"]),
    "unknown_metric": ("metric: quality.modes", "metric: quality.mode", ["objectives[0].metric", "quality.modes"]),
    "unknown_family": ("family: gan", "family: gann", ["family", "did you mean 'gan'"]),
    "name_slash": ("study: tiny", "study: a/b", ["study", "a/b"]),
    "name_dotdot": ("study: tiny", "study: ../tiny", ["study", "../tiny"]),
    "invalid_choice": ("[non_saturating, hinge]", "[non_saturating, hinj]", ["gan.loss", "hinj", "hinge"]),
    "fixed_bad_type": ("train.batch_size: 64", "train.batch_size: many", ["train.batch_size"]),
    "fixed_and_searched": ("train.batch_size: 64", "gan.loss: hinge", ["gan.loss", "fixed and searched"]),
    "malformed": ("fixed:\n", "fixed: [\n", ["malformed YAML"]),
    "budget_key": ("eval_every: 50}", "eval_every: 50, seed: 3}", ["budget.seed", "did you mean 'seeds'"]),
    "zero_seeds": ("eval_every: 50}", "eval_every: 50, seeds: 0}", ["budget.seeds", ">= 1"]),
    "seed_metric_one_seed": (
        "  - {metric: quality.modes, mode: max}",
        "  - {metric: stability.seed_cv, mode: min}",
        ["budget.seeds", "needs >= 2 seeds"],
    ),
    "algorithm": ("fixed:\n", "search: {algorithm: tpee}\nfixed:\n", ["search.algorithm", "did you mean 'tpe'"]),
    "scheduler": ("fixed:\n", "search: {scheduler: hyperband}\nfixed:\n", ["search.scheduler", "asha"]),
    "grid_float": ("fixed:\n", "search: {algorithm: grid}\nfixed:\n", ["grid search", "step"]),
    "asha_cost": (
        "  - {metric: quality.modes, mode: max}",
        "  - {metric: cost.wall_s, mode: min}\nsearch: {scheduler: asha}",
        ["search.scheduler", "quality.*"],
    ),
    "family_twice": ("family: gan", "family: [gan, gan]", ["family", "twice"]),
    "success_metric": (
        "budget:",
        "success: {metric: quality.mods, at_least: 20}\nbudget:",
        ["success.metric", "did you mean 'quality.modes'"],
    ),
    "success_bound": (
        "budget:",
        "success: {metric: quality.modes, at_least: many}\nbudget:",
        ["success.at_least", "expected a number"],
    ),
    "success_key": (
        "budget:",
        "success: {metric: quality.modes, atleast: 20}\nbudget:",
        ["success.atleast", "did you mean 'at_least'"],
    ),
    "resources_key": ("fixed:\n", "resources: {worker: 2}\nfixed:\n", ["resources.worker", "did you mean 'workers'"]),
    "zero_workers": ("fixed:\n", "resources: {workers: 0}\nfixed:\n", ["resources.workers", ">= 1"]),
    "negative_retries": ("fixed:\n", "resources: {max_failures: -1}\nfixed:\n", ["resources.max_failures", ">= 0"]),
    "placement": ("fixed:\n", "resources: {placement: spred}\nfixed:\n", ["resources.placement", "'spread'"]),
    "gpus": ("fixed:\n", "resources: {gpus_per_worker: one}\nfixed:\n", ["resources.gpus_per_worker", "number"]),
    "results_key": ("fixed:\n", "results: {save_model: false}\nfixed:\n", ["results.save_model", "'save_models'"]),
    "save_models": ("fixed:\n", "results: {save_models: 0}\nfixed:\n", ["results.save_models", "true or false"]),
    "batch_over_workers": (
        "fixed:\n",
        "resources: {workers: 3}\nfixed:\n",
        ["train.batch_size 64 does not split over 3 workers", "multiples of 3"],
    ),
}


def assert_broken(tmp_path: Path, base: str, case: tuple[str, str, list[str]]) -> None:
    """The study `base` with `old` replaced by `new` is refused in one line naming file:line and every needle."""
    old, new, needles = case
    assert old in base
    path = _write(tmp_path, base.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    message = str(err.value)
    assert message.startswith(f"{path}:") and "\n" not in message, message  # file:line
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("name", BROKEN)
def test_broken_study_names_file_and_key(tmp_path: Path, name: str) -> None:
    assert_broken(tmp_path, BASE, BROKEN[name])


def test_unknown_dataset_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("name: grid25", "name: grid26"))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}:3: data.name:") and "did you mean 'grid25'" in str(err.value)


def _ask_tell(study: Study, n: int = 20) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    define = DefineByRun(study.space, study.run_settings(study.dry_run))
    opt = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    runs = []
    for _ in range(n):
        trial = opt.ask()
        runs.append(define(trial))
        opt.tell(trial, 0.0)
    return runs


def test_define_by_run_with_plain_optuna(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, BASE))
    constants = study.run_settings(study.dry_run)
    runs = _ask_tell(study)
    penalties = {r["gan.penalty"] for r in runs}
    assert penalties == {"none", "gradient_penalty", "r1"}  # 20 random draws see every choice
    for flat in runs:
        assert all(flat[k] == v for k, v in constants.items())
        assert ("gan.penalty_weight" in flat) == (flat["gan.penalty"] in ("gradient_penalty", "r1"))
        assert 1.0e-5 <= flat["optim.lr_g"] <= 1.0e-2
        assert flat["gan.d_steps"] in (1, 2, 3) and flat["gan.loss"] in ("non_saturating", "hinge")
        if "gan.penalty_weight" in flat:
            assert 0.1 <= flat["gan.penalty_weight"] <= 100.0
        from_flat(flat)  # every sampled run is a valid config


def test_define_by_run_pickles(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, BASE))
    define = DefineByRun(study.space, study.run_settings(study.dry_run))
    clone = pickle.loads(pickle.dumps(define))
    assert clone == define
    trial = optuna.trial.FixedTrial(
        {"gan.loss": "hinge", "gan.penalty": "r1", "gan.penalty_weight": 1.0, "optim.lr_g": 1e-3, "gan.d_steps": 2}
    )
    assert clone(trial) == define(trial)


GRID = """\
study: grid
family: gan
data: {name: grid25}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 6, steps: 100}
dry_run: {trials: 7, steps: 10}
search: {algorithm: grid}
space:
  gan.loss: {choice: [non_saturating, hinge]}
  optim.lr_g: {float: [1.0e-4, 3.0e-4], step: 1.0e-4}
"""


def test_grid_study_counts_its_points_and_rejects_more_trials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dry_run.trials: the grid has 6 points, fewer than 7 trials"):
        load_study(_write(tmp_path, GRID))
    study = load_study(_write(tmp_path, GRID.replace("trials: 7", "trials: 6")))
    assert study.space["optim.lr_g"].grid_values() == pytest.approx([1e-4, 2e-4, 3e-4])
    assert study.algorithm == "grid"


def test_study_over_several_families_searches_the_family(tmp_path: Path) -> None:
    text = BASE.replace("family: gan", "family: [vae, flow, autoregressive]").split("space:")[0]
    study = load_study(_write(tmp_path, text + "space:\n  optim.lr: {choice: [1.0e-3, 3.0e-3]}\n"))
    assert study.families == ["vae", "flow", "autoregressive"] and study.family == "vae+flow+autoregressive"
    assert list(study.space) == ["family", "optim.lr"]
    assert "family" not in study.run_settings(study.budget)
    runs = _ask_tell(study, 12)
    assert {r["family"] for r in runs} == {"vae", "flow", "autoregressive"}
    for run in runs:
        from_flat(run)


def test_space_key_of_one_family_only_is_rejected_in_a_families_study(tmp_path: Path) -> None:
    text = BASE.replace("family: gan", "family: [gan, vae]")
    with pytest.raises(ConfigError, match=r"gan.loss: a key of gan only; the vae trials .*when: {family: \[gan\]}"):
        load_study(_write(tmp_path, text))


def test_success_threshold_is_read(tmp_path: Path) -> None:
    study = load_study(
        _write(tmp_path, BASE.replace("budget:", "success: {metric: quality.modes, at_least: 20}\nbudget:"))
    )
    assert study.success == ("quality.modes", "at_least", 20.0)
    assert load_study(_write(tmp_path, BASE)).success is None


def test_models_are_kept_unless_the_study_says_not(tmp_path: Path) -> None:
    assert load_study(_write(tmp_path, BASE)).save_models is True
    off = BASE.replace("fixed:\n", "results: {save_models: false}\nfixed:\n")
    assert load_study(_write(tmp_path, off)).save_models is False


def test_seeds_and_scheduler_are_read(tmp_path: Path) -> None:
    text = BASE.replace("eval_every: 50}", "eval_every: 50, seeds: 3}").replace(
        "fixed:\n", "search: {algorithm: qmc, scheduler: asha, grace_evals: 1}\nfixed:\n"
    )
    study = load_study(_write(tmp_path, text))
    assert (study.budget.seeds, study.dry_run.seeds) == (3, 1)
    assert (study.algorithm, study.scheduler, study.grace_evals) == ("qmc", "asha", 1)


def test_resources_default_and_data_parallel(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, BASE))
    assert (study.workers, study.max_failures, study.distributed, study.trial_cpus) == (1, 2, False, 1)
    text = BASE.replace(
        "fixed:\n", "resources: {workers: 4, cpus_per_trial: 2, placement: spread, max_failures: 0}\nfixed:\n"
    )
    study = load_study(_write(tmp_path, text))
    assert (study.workers, study.placement, study.max_failures, study.distributed, study.trial_cpus) == (
        4,
        "spread",
        0,
        True,
        8,
    )
    asha = load_study(_write(tmp_path, text.replace("fixed:\n", "search: {scheduler: asha}\nfixed:\n", 1)))
    assert (asha.scheduler, asha.distributed) == ("asha", True)  # its trials report every evaluation to Tune
    searched = text.replace("  gan.d_steps: {int: [1, 3]}", "  train.batch_size: {choice: [64, 128, 30]}").replace(
        "  train.batch_size: 64\n", ""
    )
    with pytest.raises(ConfigError, match="train.batch_size 30 does not split over 4 workers"):
        load_study(_write(tmp_path, searched))


def test_a_cluster_profile_takes_the_same_trial_resources(tmp_path: Path) -> None:
    from genbench.cluster.profiles import load_profile

    path = tmp_path / "c.yaml"
    path.write_text("genbench:\n  storage: /shared\n  trial_resources: {workers: 2, max_failures: 3}\n")
    assert load_profile(path).trial_resources == {"workers": 2, "max_failures": 3}
    path.write_text("genbench:\n  storage: /shared\n  trial_resources: {placement: everywhere}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: genbench\.trial_resources\.placement: unknown value"):
        load_profile(path)


def test_the_families_study_keeps_its_success_threshold() -> None:
    # an edit once merged a comment with `success:` and left two `budget:` keys, the last silently winning
    study = load_study(STUDIES / "families.yaml")
    assert study.success == ("quality.modes", "at_least", 20.0)
    assert (study.budget.trials, study.budget.steps, study.budget.seeds) == (5, 10000, 3)


def _without(text: str, section: str) -> str:
    """The study text without one top-level section (its line and the indented lines under it)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if not line.startswith(" "):
            skipping = line.startswith(f"{section}:")
        if not skipping:
            out.append(line)
    return "".join(out)


@pytest.mark.parametrize("section", ["data", "objectives", "budget", "dry_run", "space"])
def test_a_missing_required_section_is_reported_as_missing(tmp_path: Path, section: str) -> None:
    path = _write(tmp_path, _without(BASE, section))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}: {section}: missing section"), err.value
    path = _write(tmp_path, _without(BASE, section) + f"{section}:\n")  # the key with nothing after it
    with pytest.raises(ConfigError, match=f"{section}: empty section"):
        load_study(path)


NON_FINITE = {  # (old, new, key the message names): NaN passes `x > 0` and `x < 0` checks alike
    "range_nan": ("[1.0e-5, 1.0e-2]", "[.nan, 1.0e-2]", "optim.lr_g"),
    "step_nan": ("{int: [1, 3]}", "{int: [1, 3], step: .nan}", "gan.d_steps"),
    "step_inf": ("{int: [1, 3]}", "{int: [1, 3], step: .inf}", "gan.d_steps"),
    "choice_nan": ("{float: [0.1, 100.0], log: true,", "{choice: [.nan, 10.0],", "gan.penalty_weight"),
    "success_nan": ("budget:", "success: {metric: quality.modes, at_least: .nan}\nbudget:", "success.at_least"),
    "success_inf": ("budget:", "success: {metric: quality.modes, at_most: -.inf}\nbudget:", "success.at_most"),
    "fixed_nan": ("train.batch_size: 64", "train.batch_size: 64\n  gan.clip: .nan", "gan.clip"),
    "fixed_nan_string": ("train.batch_size: 64", "train.batch_size: 64\n  gan.clip: nan", "gan.clip"),
    "fixed_inf": ("train.batch_size: 64", "train.batch_size: 64\n  train.diverge_loss: .inf", "train.diverge_loss"),
}


@pytest.mark.parametrize("name", NON_FINITE)
def test_nan_and_inf_are_refused_where_a_number_is_expected(tmp_path: Path, name: str) -> None:
    old, new, key = NON_FINITE[name]
    assert old in BASE
    path = _write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}:") and f"{key}: " in str(err.value), err.value
