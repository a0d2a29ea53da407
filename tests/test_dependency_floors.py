"""pyproject.toml's floors exclude the known vulnerable releases and those without the APIs genbench calls, and what
is installed here meets every floor."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# The lowest floor each may have, and why (docs/dependency-floors.md).
NEEDED = {
    "torch": (
        "2.9",
        "backends fp32_precision (train.tf32) from 2.9; weights_only=True loading bypassable before 2.6 "
        "(CVE-2025-32434); nn.utils.get_total_norm and clip_grads_with_norm_ from 2.6",
    ),
    "ray": ("2.56", "ray.train.LoggingConfig (Train v2) from 2.56; token authentication from 2.52"),
    "optuna": ("5.0", "PED-ANOVA importances of conditional parameters from 5.0 (4.x leaves them out)"),
    "pyarrow": (
        "17",
        "unify_schemas(promote_options=...) from 14.0; CVE-2023-47248 fixed in 14.0.1; ray[tune] 2.56 requires 17",
    ),
    "pillow": ("11.3", "image decoder and encoder CVEs up to 11.2 (CVE-2023-50447, CVE-2024-28219, CVE-2025-48379)"),
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {(r := Requirement(line)).name.lower(): r for line in project["dependencies"]}


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(floors) if floors else None


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_the_floor_excludes_vulnerable_releases_and_missing_apis(name: str) -> None:
    floor = _floor(_requirements()[name])
    needed, why = NEEDED[name]
    assert floor is not None and floor >= Version(needed), f"{name} needs >= {needed}: {why}"


def test_the_installed_versions_meet_every_floor() -> None:
    for name, requirement in _requirements().items():
        installed = Version(version(name))
        floor = _floor(requirement)
        # A local build tag (torch 2.13.0+cpu) still meets its release's floor.
        assert floor is None or Version(installed.base_version) >= floor, f"{name} {installed} < {floor}"


def test_the_cpu_torch_pin_meets_the_floor_so_pip_keeps_it() -> None:
    """`make` installs the Makefile's CPU torch first; the floor admits it and sets no upper bound or exact version,
    so installing genbench never replaces it with a (CUDA) build from the index."""
    import re

    pin = re.search(r"^TORCH \?= torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    requirement = _requirements()["torch"]
    assert pin and [s.operator for s in requirement.specifier] == [">="]
    assert requirement.specifier.contains(pin.group(1))


def test_the_apis_that_set_the_floors_exist() -> None:
    """What each floor is for, called: a run against the floors (not only the newest releases) checks them too."""
    import optuna
    import pyarrow as pa
    import torch
    from ray.train import LoggingConfig

    assert callable(torch.nn.utils.get_total_norm) and callable(torch.nn.utils.clip_grads_with_norm_)
    assert torch.backends.cuda.matmul.fp32_precision and torch.backends.cudnn.conv.fp32_precision  # train.tf32
    assert LoggingConfig is not None
    wide = pa.unify_schemas(
        [pa.schema([("a", pa.int32())]), pa.schema([("a", pa.int64())])], promote_options="permissive"
    )
    assert wide.field("a").type == pa.int64()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        lambda t: t.suggest_float("x", 0, 1) + (t.suggest_float("y", 0, 1) if t.number % 2 else 0), n_trials=12
    )  # y is conditional: only odd trials draw it
    scores = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    assert set(scores) == {"x", "y"}  # optuna 4.x left y out


def _floors_script() -> Any:
    spec = importlib.util.spec_from_file_location("floors", ROOT / "scripts" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_floors_pins_every_dependency_at_its_floor() -> None:
    """`make floors` installs these pins (torch: the Makefile's CPU build) and runs this file and the wheel test."""
    pins = _floors_script().pins()
    assert [Requirement(p).name.lower() for p in pins] == list(_requirements())
    assert "pyarrow==17" in pins and "ray==2.56" in pins and pins[0] == "torch==2.13.0"
    assert "scripts/floors.py check" in (ROOT / "Makefile").read_text()


def test_every_genbench_module_imports() -> None:
    """What `make floors` checks on the floors, here on what is installed: no module fails to import."""
    assert _floors_script().import_all() == []
