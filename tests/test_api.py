"""The Python API (genbench/api.py): results as frames, the best configuration and its rows, a study from a dict,
one run from a dict, dashboards; `import genbench` stays cheap. The Ray tests read the shared VAE/flow image dry
run (tests/conftest.py), which runs through genbench.run_study from a dict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import genbench
from genbench.errors import ConfigError, GenbenchError
from genbench.families import FAMILIES
from genbench.results.store import ResultsStore
from genbench.shipped import STUDIES
from genbench.sweep.spec import load_study, study_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_import_genbench_and_its_api_names_import_nothing_heavy() -> None:
    code = (
        "import sys, genbench\n"
        "assert callable(genbench.load_results) and callable(genbench.run_study) and genbench.Results\n"
        "print(sorted(m for m in ('torch', 'ray', 'optuna', 'pyarrow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        genbench.nothing  # noqa: B018


def test_a_study_dict_loads_to_the_study_its_file_loads_to() -> None:
    path = STUDIES / "gan_stability.yaml"
    from_file = load_study(path)
    from_dict = study_from_dict(yaml.safe_load(path.read_text()))
    assert from_dict.source == "study dict" and from_file.source == str(path)
    assert {**vars(from_dict), "source": ""} == {**vars(from_file), "source": ""}


def _study(**changes: Any) -> dict[str, Any]:
    """A tiny study as a dict: two families on grid25, a key both have searched."""
    study: dict[str, Any] = {
        "study": "api_tiny",
        "family": ["vae", "flow"],
        "data": {"name": "grid25"},
        "objectives": [{"metric": "quality.modes", "mode": "max"}],
        "budget": {"trials": 4, "steps": 20, "eval_every": 10, "seeds": 2},
        "dry_run": {"trials": 2, "steps": 20, "eval_every": 10},
        "space": {"optim.lr": {"choice": [1e-3, 3e-3]}},
    }
    study.update(changes)
    return study


@pytest.mark.parametrize(
    "changes,key,problem",
    [
        ({"budget": {"trials": 0, "steps": 20, "eval_every": 10}}, "budget.trials", "expected an integer >= 1"),
        ({"sapce": {}}, "sapce", "unknown key"),
        ({"space": {"optim.lr": {"choice": [object()]}}}, "space.optim.lr.choice[0]", "is not plain YAML data"),
        ({"objectives": [{"metric": "quality.mods", "mode": "max"}]}, "objectives", "quality.modes"),
    ],
)
def test_a_bad_study_dict_is_one_error_naming_the_key(changes: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        study_from_dict(_study(**changes))
    assert info.value.source == "study dict" and info.value.key.startswith(key), str(info.value)
    assert problem in str(info.value)


def test_a_study_dict_takes_numpy_numbers_and_tuples_as_yaml_would() -> None:
    study = study_from_dict(_study(space={"optim.lr": {"choice": (np.float64(1e-3), np.float32(3e-3))}}))
    assert study.raw["space"]["optim.lr"]["choice"] == [1e-3, pytest.approx(3e-3)]
    assert [type(v) for v in study.raw["space"]["optim.lr"]["choice"]] == [float, float]
    with pytest.raises(ConfigError, match="expected a mapping of keys at the top level, got list"):
        study_from_dict([("study", "x")])  # type: ignore[arg-type]


def test_run_study_refuses_a_bad_dict_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="study dict: budget.seeds"):
        genbench.run_study(_study(budget={"trials": 1, "steps": 5, "eval_every": 5, "seeds": 0}), out=tmp_path / "r")
    with pytest.raises(ConfigError, match="--set: optim.lr: is searched by the study"):
        genbench.run_study(_study(), dry_run=True, out=tmp_path / "r", overrides={"optim.lr": 0.1})
    assert not (tmp_path / "r").exists()


def _debug_run(family: str, **changes: Any) -> dict[str, Any]:
    return {
        "family": family,
        "data.name": "grid25",
        "data.n_train": 1000,
        "data.n_test": 200,
        **FAMILIES.get(family).debug,
        "train.batch_size": 32,
        "train.steps": 6,
        "eval.every": 3,
        "eval.n_samples": 200,
        **changes,
    }


def test_run_training_trains_a_flat_dict_and_returns_its_row() -> None:
    reports: list[tuple[int, dict[str, float]]] = []
    row = genbench.run_training(_debug_run("vae"), lambda step, values: reports.append((step, values)))
    assert row["status"] == "completed" and row["steps"] == 6, row.get("error")
    assert np.isfinite(row["likelihood.nll"]) and 0 <= row["quality.modes"] <= 25 and row["cost.wall_s"] > 0
    assert [step for step, values in reports if "eval.modes" in values] == [3, 6]
    with pytest.raises(ConfigError, match="run config: train.stepz: unknown key"):
        genbench.run_training(_debug_run("vae", **{"train.stepz": 5}))


def _write_two_families(root: Path) -> ResultsStore:
    """Results written as a sweep writes them, without training: a flow and a VAE configuration of two seeds
    each, with history, summarised by the sweep's own summary code."""
    from genbench.sweep.summary import summarise

    study = study_from_dict(_study())
    store = ResultsStore(str(root))
    store.write_study({"study": study.name, "source": study.source})
    for config_id, family, key, modes in (("c1", "flow", "couplings", 14.0), ("c2", "vae", "latent_dim", 21.0)):
        rows = [
            {
                "trial_id": f"{config_id}_s{seed}",
                "config_id": config_id,
                "study": study.name,
                "family": family,
                "status": "completed",
                "seed": seed,
                "steps": 20,
                "quality.modes": modes + seed,
                f"config.{family}.{key}": 2,
                "config.optim.lr": 1e-3,
            }
            for seed in (0, 1)
        ]
        history = [{"trial_id": r["trial_id"], "step": s, "eval.modes": modes} for r in rows for s in (10, 20)]
        store.write_config(config_id, rows, history)
    summarise(study, study.budget, store, None)
    return store


def test_results_read_every_family_and_name_the_best_configuration_and_its_rows(tmp_path: Path) -> None:
    store = _write_two_families(tmp_path / "r")
    (tmp_path / "r" / "trials" / "_corrupt-part-c0.parquet").write_bytes(b"set aside by --resume")
    results = genbench.load_results(tmp_path / "r")
    assert sorted(results.trials["family"]) == ["flow", "flow", "vae", "vae"] and results.skipped == {}
    assert {"config.flow.couplings", "config.vae.latent_dim"} <= set(results.trials)  # the union of the parts
    assert len(results.history) == 8 and results.study["source"] == "study dict"
    best = results.best
    assert best is not None and (best.config_id, best.family, best.seeds) == ("c2", "vae", [0, 1])
    assert best.scores == {"quality.modes": 21.5} and best.entry == results.summary["best"]
    assert best.config["vae.latent_dim"] == 2 and best.config["optim.lr"] == 1e-3 and best.config["seed"] == 0
    assert list(best.trials["trial_id"]) == ["c2_s0", "c2_s1"]
    assert list(zip(best.history["trial_id"], best.history["step"])) == [
        ("c2_s0", 10),
        ("c2_s0", 20),
        ("c2_s1", 10),
        ("c2_s1", 20),
    ]
    assert list(results.configurations["config_id"]) == ["c1", "c2"] and store.exists("summary.yaml")
    joined = results.history_with()
    assert len(joined) == 8 and set(zip(joined["trial_id"], joined["family"], joined["seed"])) == {
        ("c1_s0", "flow", 0),
        ("c1_s1", "flow", 1),
        ("c2_s0", "vae", 0),
        ("c2_s1", "vae", 1),
    }
    assert list(results.history_with("config.optim.lr")["config.optim.lr"].unique()) == [1e-3]
    with pytest.raises(GenbenchError, match="no column quality.nothing"):
        results.history_with("quality.nothing")


def test_a_damaged_part_is_skipped_and_named(tmp_path: Path) -> None:
    _write_two_families(tmp_path / "r")
    (tmp_path / "r" / "trials" / "part-c1.parquet").write_bytes(b"truncated")
    results = genbench.Results(tmp_path / "r")
    assert list(results.trials["config_id"]) == ["c2", "c2"]
    assert list(results.skipped) == [str(tmp_path / "r" / "trials" / "part-c1.parquet")]


def test_results_without_a_summary_have_no_best_and_a_wrong_location_says_so(tmp_path: Path) -> None:
    store = _write_two_families(tmp_path / "r")
    store.fs.delete_file(store.path("summary.yaml"))
    results = genbench.load_results(str(tmp_path / "r"))
    assert results.summary is None and results.best is None and results.budget_curve is not None
    with pytest.raises(GenbenchError, match="study.yaml: not found; is .* a genbench results directory"):
        genbench.load_results(tmp_path / "elsewhere")


@pytest.mark.ray
def test_the_image_dry_run_from_a_dict_reads_back_with_its_best_configuration(image_study_results: Path) -> None:
    """The shared VAE/flow dry run, run by genbench.run_study from a dict: its results as frames, its best
    configuration, and that configuration trained again from its flat config for two steps."""
    results = genbench.load_results(image_study_results)
    assert results.study["source"] == "study dict" and results.study["study"] == "vae_flow_images"
    assert sorted(results.trials["family"]) == ["flow", "flow", "vae", "vae"]
    assert {"config.vae.latent_dim", "config.flow.couplings"} <= set(results.trials)
    best = results.best
    assert best is not None and best.entry == results.summary["best"]
    assert best.family in ("vae", "flow") and len(best.trials) == 1 and best.seeds == [best.config["seed"]]
    assert set(best.history["trial_id"]) == {best.config_id} and best.history["step"].max() == 6
    assert best.scores["likelihood.bpd"] == pytest.approx(best.trials["likelihood.bpd"].iloc[0])
    row = genbench.run_training({**best.config, "train.steps": 2, "eval.every": 2})
    assert row["status"] == "completed" and row["likelihood.bpd"] > 0, row.get("error")


@pytest.mark.ray
def test_results_at_a_uri_and_dashboards_rebuilt(image_study_results: Path, s3: dict[str, str], tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    copy = tmp_path / "copy"
    shutil.copytree(image_study_results, copy, ignore=shutil.ignore_patterns("dashboards", "ray"))
    local = genbench.load_results(copy)
    index = local.write_dashboards()
    assert index == str(copy / "dashboards" / "index.html") and "vae_flow_images" in Path(index).read_text()
    for name in ("trials", "history"):
        pafs.copy_files(str(copy / name), f"s3://genbench/api/{name}")
    for name in ("study.yaml", "summary.yaml"):
        pafs.copy_files(str(copy / name), f"s3://genbench/api/{name}")
    remote = genbench.load_results("s3://genbench/api")
    assert (
        remote.trials.sort_values("trial_id")
        .reset_index(drop=True)
        .equals(local.trials.sort_values("trial_id").reset_index(drop=True))
    )
    assert remote.best is not None and remote.best.config == local.best.config
