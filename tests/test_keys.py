"""Keys of one family in a study of several (family sections of fixed:, when: {family: [...]}), the unknown-key
errors, `genbench list keys`, the data keys a data set reads, and the example study of docs/own-images.md."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from genbench.cli import main
from genbench.config import DataConfig, from_flat, resolved_text, to_flat, valid_keys
from genbench.data import DATA_KEYS, load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.results.store import ResultsStore
from genbench.runkeys import describe_keys, format_keys
from genbench.sweep.spec import Study, check_overrides, load_study
from test_study import assert_broken  # tests/ is on sys.path (rootdir conftest, no __init__.py)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "own_images.yaml"

STUDY = """\
study: vae_flow
family: [vae, flow]
data: {name: grid25, n_train: 500, n_test: 200}
objectives: [{metric: likelihood.nll, mode: min}]
budget: {trials: 4, steps: 20}
dry_run: {trials: 4, steps: 10}
search: {algorithm: random, seed: 0}
fixed:
  train.batch_size: 32
  vae: {vae.iwae_k: 4, optim.lr: 1.0e-3}
  flow: {flow.hidden: 16}
space:
  optim.grad_clip: {float: [1.0, 10.0]}
  vae.latent_dim: {choice: [2, 4], when: {family: [vae]}}
  flow.couplings: {choice: [2, 4], when: {family: [flow]}}
  flow.depth: {int: [1, 2], when: {flow.couplings: [4]}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def _own_keys(run: dict[str, Any], family: str) -> None:
    """A trial's run holds no key of the study's other family, and is a valid run of its own."""
    other = {"vae": "flow.", "flow": "vae."}[family]
    assert not [k for k in run if k.startswith(other)], run
    from_flat(run)


def _suggested(study: Study, n: int) -> list[dict[str, Any]]:
    """n trials' runs through Ray Tune's own OptunaSearch (pickled, as Tune stores it), without a Ray instance."""
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch(
        study.define_by_run(study.run_settings(study.dry_run)),
        metric="likelihood.nll",
        mode="min",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    search = pickle.loads(pickle.dumps(search))
    runs = []
    for i in range(n):
        runs.append(search.suggest(f"t{i}"))
        search.on_trial_complete(f"t{i}", {"likelihood.nll": 1.0})
    return runs


def test_guarded_keys_validate_and_reach_only_their_familys_trials(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, STUDY))
    assert study.family_fixed == {"vae": {"vae.iwae_k": 4, "optim.lr": 1.0e-3}, "flow": {"flow.hidden": 16}}
    runs = _suggested(study, 16)
    assert {r["family"] for r in runs} == {"vae", "flow"}
    for run in runs:
        _own_keys(run, run["family"])
        assert run["train.batch_size"] == 32 and 1.0 <= run["optim.grad_clip"] <= 10.0  # shared: every trial
    for run in (r for r in runs if r["family"] == "vae"):
        assert run["vae.iwae_k"] == 4 and run["optim.lr"] == 1.0e-3 and run["vae.latent_dim"] in (2, 4)
    flows = [r for r in runs if r["family"] == "flow"]
    for run in flows:  # the VAE's optim.lr is not the flow's: its trials keep their own default
        assert run["flow.hidden"] == 16 and "optim.lr" not in run and run["flow.couplings"] in (2, 4)
        assert ("flow.depth" in run) == (run["flow.couplings"] == 4)  # conditioned on a flow key: flow-only
    assert {r["flow.couplings"] for r in flows} == {2, 4}


def test_an_example_run_of_each_family_holds_only_its_keys(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, STUDY))
    for family in study.families:
        run = study.example_run(study.dry_run, family)
        _own_keys(run, family)
    assert study.fixed_for("vae")["optim.lr"] == 1.0e-3 and "optim.lr" not in study.fixed_for("flow")


BROKEN = {  # name: (old, new, texts the one-line message must hold besides the file:line)
    "unguarded_space_key": (
        "{choice: [2, 4], when: {family: [vae]}}",
        "{choice: [2, 4]}",
        [
            "vae.latent_dim: a key of vae only; the flow trials of this vae+flow study",
            "add when: {family: [vae]} to this entry",
        ],
    ),
    "unguarded_fixed_key": (
        "  train.batch_size: 32\n",
        "  train.batch_size: 32\n  vae.beta: 0.5\n",
        ["vae.beta: a key of vae only", "fixed: {vae: {vae.beta: VALUE}}"],
    ),
    "guard_of_the_other_family": (
        "when: {family: [vae]}",
        "when: {family: [flow]}",
        ["vae.latent_dim: a key of vae only", "when: {family: [vae]}"],
    ),
    "misspelt_family_in_when": ("when: {family: [vae]}", "when: {family: [vea]}", ["'vea'", "did you mean 'vae'"]),
    "section_key_of_the_other_family": (
        "flow: {flow.hidden: 16}",
        "flow: {vae.width: 16}",
        ["vae.width: a key of vae only", "fixed: {vae: {vae.width: VALUE}}"],
    ),
    "section_of_a_family_not_studied": (
        "flow: {flow.hidden: 16}",
        "gan: {gan.loss: hinge}",
        ["fixed.gan: gan is not a family of this study", "vae and flow"],
    ),
    "section_not_a_mapping": ("flow: {flow.hidden: 16}", "flow: 16", ["fixed.flow: expected a mapping"]),
    "data_key_in_a_section": (
        "flow: {flow.hidden: 16}",
        "flow: {data.n_train: 9}",
        ["fixed.flow.data.n_train: is the same for every family", "data:"],
    ),
    "budget_key_in_a_section": ("flow: {flow.hidden: 16}", "flow: {train.steps: 9}", ["budget.steps"]),
    "fixed_and_searched_for_one_family": (
        "flow: {flow.hidden: 16}",
        "flow: {flow.couplings: 4}",
        ["flow.couplings: is both fixed for flow and searched"],
    ),
    "condition_no_family_meets": (
        "when: {flow.couplings: [4]}",
        "when: {flow.couplings: [4], vae.latent_dim: [2]}",
        ["flow.depth: its 'when' holds for no family's trials"],
    ),
    "bad_value_in_a_section": ("vae.iwae_k: 4", "vae.iwae_k: 0", ["vae.iwae_k: must be >= 1"]),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_misplaced_family_key_is_one_error_that_says_what_to_do(tmp_path: Path, name: str) -> None:
    assert_broken(tmp_path, STUDY, BROKEN[name])


def test_a_key_fixed_for_one_family_may_be_searched_for_another(tmp_path: Path) -> None:
    text = STUDY.replace(
        "  optim.grad_clip:", "  optim.lr: {float: [1.0e-3, 3.0e-3], when: {family: [flow]}}\n  optim.grad_clip:"
    )
    study = load_study(_write(tmp_path, text))
    for run in _suggested(study, 8):
        assert run["optim.lr"] == 1.0e-3 if run["family"] == "vae" else 1.0e-3 <= run["optim.lr"] <= 3.0e-3


def test_a_family_guard_in_a_study_of_one_family_says_to_drop_it(tmp_path: Path) -> None:
    text = (
        STUDY.replace("family: [vae, flow]", "family: vae")
        .split("space:")[0]
        .replace("  flow: {flow.hidden: 16}\n", "")
    )
    with pytest.raises(ConfigError, match="needs no family guard"):
        load_study(_write(tmp_path, text + "space:\n  vae.latent_dim: {choice: [2, 4], when: {family: [vae]}}\n"))
    study = load_study(_write(tmp_path, text + "space:\n  vae.latent_dim: {choice: [2, 4]}\n"))
    assert study.run_settings(study.dry_run)["vae.iwae_k"] == 4  # one family: its section is every trial's


def test_the_unknown_key_error_lists_the_whole_section() -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "vae", "vae.no_such": 1})
    section = sorted(k for k in valid_keys("vae") if k.startswith("vae."))
    assert f"the vae.* keys are {', '.join(section)}" in str(err.value) and "..." not in str(err.value)
    with pytest.raises(ConfigError, match=r"flow.\* keys belong to family 'flow'.*genbench list keys vae"):
        from_flat({"family": "vae", "flow.couplings": 4})
    with pytest.raises(ConfigError, match=r"run keys are data.\*, eval.\*, family, optim.\*, seed, train.\*, vae.\*"):
        from_flat({"family": "vae", "nonsense": 1})


def test_set_refuses_a_key_some_families_lack_or_one_a_family_section_fixes(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path, STUDY))
    with pytest.raises(ConfigError, match=r"--set: vae.beta: a key of vae only.*in the study file: fixed: {vae:"):
        check_overrides(study, study.dry_run, {"vae.beta": 2.0})
    with pytest.raises(ConfigError, match=r"--set: optim.lr: is fixed for vae by the study"):
        check_overrides(study, study.dry_run, {"optim.lr": 2.0e-3})
    check_overrides(study, study.dry_run, {"train.log_every": 5})


def test_list_keys_covers_every_key_of_every_family_with_type_default_and_meaning() -> None:
    sections = describe_keys()
    shared = {k.key: k for k in next(iter(sections.values()))}
    for family in FAMILIES.names():
        own = {k.key: k for k in sections[f"family {family}: {family}.* and its optim.*"]}
        assert set(shared) | set(own) == set(valid_keys(family))
        for doc in own.values():
            assert doc.meaning and doc.default and doc.kind in ("int", "float", "str", "bool", "auto|true|false"), doc
    assert all(k.meaning for k in shared.values()), [k.key for k in shared.values() if not k.meaning]
    assert shared["train.steps"].default.startswith("autoregressive 2000, diffusion 6000")  # per-family budgets
    assert "[read by: celeba, files]" in shared["data.test_fraction"].meaning
    vae = {k.key: (k.kind, k.default) for k in describe_keys("vae")["family vae: vae.* and its optim.*"]}
    assert vae["vae.latent_dim"] == ("int", "8") and vae["optim.lr"] == ("float", "0.001")


def test_list_keys_json_gives_each_key_its_typed_default_per_family(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "keys", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sections = describe_keys()
    assert doc["family"] is None and [s["title"] for s in doc["sections"]] == list(sections)
    shared = {k["key"]: k for k in doc["sections"][0]["keys"]}
    text = {k.key: k for k in next(iter(sections.values()))}
    assert set(shared) == set(text) and shared["train.steps"]["default"] == text["train.steps"].default
    assert set(shared["train.steps"]["defaults"]) == set(FAMILIES.names())
    assert shared["train.steps"]["defaults"]["diffusion"] == 6000  # a number, where the text says 'diffusion 6000'
    assert shared["train.bf16"]["defaults"]["gan"] == "auto" and shared["train.bf16"]["type"] == "auto|true|false"
    assert main(["list", "keys", "vae", "--json"]) == 0
    vae = json.loads(capsys.readouterr().out)
    assert vae["family"] == "vae" and len(vae["sections"]) == 2
    own = {k["key"]: k for k in vae["sections"][1]["keys"]}
    assert {k: own["vae.latent_dim"][k] for k in ("type", "default", "defaults")} == {
        "type": "int",
        "default": "8",
        "defaults": {"vae": 8},
    }
    assert own["vae.latent_dim"]["meaning"]


def test_genbench_list_keys_prints_one_family_without_importing_torch() -> None:
    probe = (
        "import sys\nfrom genbench.cli import main\ncode = main(['list', 'keys', 'flow'])\n"
        "print(code, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[-1] == "0 False" and lines[0].startswith("# shared by every family (defaults of flow)")
    assert any(line.split()[:3] == ["flow.couplings", "int", "6"] for line in lines)
    assert not any(line.startswith(("vae.", "gan.")) for line in lines)


def test_docs_run_keys_is_the_generated_listing() -> None:
    text = (ROOT / "docs" / "run-keys.md").read_text()
    assert format_keys(describe_keys(), markdown=True) in text, (
        "docs/run-keys.md is stale: regenerate its tables with the command in its first lines"
    )


def _images(folder: Path, n: int, size: int = 8) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def test_the_example_study_validates_once_its_data_path_is_a_real_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    text = EXAMPLE.read_text()
    assert "path: /path/to/your/images" in text
    assert main(["validate", str(EXAMPLE)]) == 1  # the placeholder: one line naming the key
    assert "data.path: no such file or folder '/path/to/your/images'" in capsys.readouterr().err
    study_file = _write(tmp_path, text.replace("/path/to/your/images", str(_images(tmp_path / "imgs", 12))))
    assert main(["validate", str(study_file)]) == 0
    study = load_study(study_file)
    assert study.families == ["vae", "flow"] and study.family_fixed
    assert {k for k, p in study.space.items() if p.when.get("family") == ["vae"]} >= {"vae.latent_dim"}
    assert {k for k, p in study.space.items() if p.when.get("family") == ["flow"]} >= {"flow.couplings"}
    for family in study.families:
        _own_keys(study.example_run(study.dry_run, family), family)


CHANGES = {"n_train": 300, "n_test": 150, "image_size": 4, "channels": 1, "test_fraction": 0.5}


@pytest.mark.parametrize("name", ["grid25", "digits", "files"])
def test_data_keys_lists_what_each_offline_data_set_reads(tmp_path: Path, name: str) -> None:
    base: dict[str, Any] = {"n_train": 600, "n_test": 200}
    if name == "files":
        base["path"] = str(_images(tmp_path / "imgs", 10))
    first = load_dataset(DataConfig(name=name, **base))
    for key, value in CHANGES.items():
        other = load_dataset(DataConfig(name=name, **{**base, key: value}))
        same = (
            other.train.shape == first.train.shape
            and torch.equal(other.train, first.train)
            and torch.equal(other.test, first.test)
        )
        assert same == (key not in DATA_KEYS[name]), key


def test_the_printed_config_of_a_folder_leaves_out_the_keys_it_does_not_read() -> None:
    text = resolved_text(to_flat(from_flat({"family": "flow", "data.name": "files", "data.path": "imgs"})))
    assert '"data.n_train"' not in text and '"data.n_test"' not in text and '"data.test_fraction": 0.1' in text
    assert text.endswith(
        "(not read by data set 'files': data.n_train, data.n_test; its test split is "
        "data.test_fraction of the examples (of images: at least 150, at most a quarter), "
        "the rest trains)"
    )
    assert '"data.n_train": 50000' in resolved_text(to_flat(from_flat({"family": "flow"})))


@pytest.mark.ray
def test_a_dry_run_of_guarded_keys_gives_each_family_only_its_keys(image_study_results: Path) -> None:
    """The shared VAE/flow dry run on image files (tests/conftest.py): fixed per-family sections and when-guarded
    choices reach that family's trials only, as typed values in its rows."""
    rows = ResultsStore(str(image_study_results)).read("trials").to_pandas()  # the union of the parts' columns
    assert sorted(rows["family"]) == ["flow", "flow", "vae", "vae"] and set(rows["status"]) == {"completed"}, rows
    for _, row in rows.iterrows():
        if row["family"] == "vae":
            assert row["config.vae.latent_dim"] in (2, 3) and row["config.vae.iwae_k"] == 2
            assert row.isna()["config.flow.couplings"] and row.isna()["config.flow.depth"]
        else:
            assert row["config.flow.couplings"] in (2, 4) and row["config.flow.depth"] == 1
            assert row.isna()["config.vae.latent_dim"] and row.isna()["config.vae.iwae_k"]
        assert row["config.optim.lr"] in (1.0e-3, 3.0e-3)
    assert set(rows["config.vae.latent_dim"].dropna()) == {2, 3} and set(rows["config.flow.couplings"].dropna()) == {
        2,
        4,
    }


def test_the_how_to_shows_the_example_file_and_the_data_keys_defaults() -> None:
    doc = (ROOT / "docs" / "own-images.md").read_text()
    body = EXAMPLE.read_text().split("study: own_images", 1)[1]
    assert f"```yaml\nstudy: own_images{body}```" in doc, (
        "docs/own-images.md no longer shows docs/examples/own_images.yaml"
    )
    for key in ("path", "image_size", "channels", "test_fraction"):
        value = next(f.default for f in dataclasses.fields(DataConfig) if f.name == key)
        shown = '""' if value == "" else f"{value:g}" if isinstance(value, float) else str(value)
        assert f"| `data.{key}` | `{shown}` |" in doc, f"docs/own-images.md: data.{key}'s default is {shown}"


def test_family_is_not_a_space_key(tmp_path: Path) -> None:
    assert_broken(
        tmp_path,
        STUDY,
        (
            "  optim.grad_clip:",
            "  family: {choice: [vae]}\n  optim.grad_clip:",
            ["family: is the study's family:", "family: [vae, flow]"],
        ),
    )


def test_the_example_dry_run_trains_both_families(tmp_path: Path) -> None:
    """The searcher's first four draws (the dry run's trials, in order) hold each family twice: the sweep's own
    sampler, asked as Tune's OptunaSearch asks it (TPE's first trials are random, so the order is fixed by the seed)."""
    from genbench.sweep.tuner import _sampler

    study_file = _write(tmp_path, EXAMPLE.read_text().replace("/path/to/your/images", str(tmp_path)))
    study = load_study(study_file)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(study))
    define, families = study.define_by_run(study.run_settings(study.dry_run)), []
    for _ in range(study.dry_run.trials):
        trial = search.ask()
        families.append(define(trial)["family"])
        search.tell(trial, [1.0, 1.0])
    assert sorted(families) == ["flow", "flow", "vae", "vae"], families
