"""Plug-ins: an installed package adds a data set, a family and a feature extractor through entry points, checked
without torch and trained by `genbench train` (the example plug-in: tests/plugin_example, docs/plugins.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import tomllib

from genbench.errors import ConfigError
from genbench.registry import Registry

EXAMPLE = Path(__file__).resolve().parent / "plugin_example"
STUDY = """
study: blobs_plugin
family: gaussian
data: {name: blobs, n_train: 200, n_test: 100}
objectives: [{metric: quality.fd, mode: min}]
budget: {trials: 2, steps: 20, eval_every: 10}
dry_run: {trials: 2, steps: 20, eval_every: 10}
fixed: {eval.features: pool2, eval.n_samples: 100, train.batch_size: 32}
space:
  gaussian.init_std: {float: [0.1, 1.0]}
"""


def install(site: Path) -> None:
    """The example plug-in as pip installs it into `site`: its package, and a dist-info folder holding the entry
    points its pyproject.toml declares (written directly: no build, nothing downloaded, nothing left behind)."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "genbench_blobs", site / "genbench_blobs")
    info = site / f"genbench_blobs-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{n} = {v}\n" for n, v in points.items()) + "\n" for g, points in groups.items())
    )


def run_with_plugin(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh Python whose path holds the installed plug-in (as site-packages would)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin-site")
    install(root)
    return root


def test_a_study_of_plugin_names_validates_and_lists_them_without_torch(site: Path, tmp_path: Path) -> None:
    (tmp_path / "blobs.yaml").write_text(STUDY)
    probe = (
        "import sys\nfrom genbench.cli import main\n"
        "from genbench.config import valid_keys\n"
        "code = main(['validate', 'blobs.yaml'])\n"
        "keys = valid_keys('gaussian')\n"
        "print([k for k in keys if k.startswith('gaussian.')], 'optim.lr' in keys)\n"
        "print(code, 'torch' in sys.modules)\n"
        "main(['list', 'datasets']); main(['list', 'families'])"  # describes each: imports the heavy modules
    )
    proc = run_with_plugin(site, probe, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    checked = lines.index("0 False")  # valid, and no torch: the entry points name light specs
    assert lines[checked - 1] == "['gaussian.init_std'] True"
    assert any(
        line.startswith("blobs ") and line.endswith("(9 classes) [plug-in of genbench-blobs 0.1.0]") for line in lines
    )
    assert any(line.startswith("gaussian ") and "maximum likelihood" in line for line in lines)


def test_genbench_trains_the_plugin_family_on_the_plugin_data_and_scores_with_its_extractor(
    site: Path, tmp_path: Path
) -> None:
    sets = "'train.steps=30', 'eval.every=15', 'eval.n_samples=100', 'data.n_train=200', 'data.n_test=100'"
    train = (
        "import sys\nfrom genbench.cli import main\n"
        "argv = ['train', 'gaussian', '--data', 'blobs', '--out', 'out', '--set', 'eval.features=pool2']\n"
        f"sys.exit(main(argv + [a for s in [{sets}] for a in ('--set', s)]))"
    )
    proc = run_with_plugin(site, train, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    row: dict[str, Any] = pq.read_table(tmp_path / "out" / "trials").to_pylist()[0]
    assert row["status"] == "completed" and row["family"] == "gaussian"
    assert row["config.data.name"] == "blobs" and row["config.gaussian.init_std"] == 0.5
    assert row["provenance.extractor"] == "pool2 (blobs plug-in)" and row["provenance.feature_dim"] == 4
    assert row["quality.fd"] >= 0 and 0 <= row["quality.recall"] <= 1
    assert json.loads(json.dumps(row["cost.params"])) == 32  # the Gaussian's mean and log-std over 16 values


def test_a_broken_or_clashing_plugin_is_a_warning_and_its_name_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    points = [
        EntryPoint("ring8", "genbench.errors:ConfigError", "test.group"),  # a built-in name: refused
        EntryPoint("lost", "no_such_module_xyz:SPEC", "test.group"),  # cannot import
        EntryPoint("odd", "genbench.errors:suggest", "test.group"),  # names something that is not a spec
    ]
    monkeypatch.setattr("genbench.plugins.entry_points", lambda group: points if group == "test.group" else [])

    def adopt(name: str, spec: Any) -> Any:
        if not isinstance(spec, type):
            raise ConfigError(f"names a {type(spec).__name__}")
        return spec

    registry: Registry[Any] = Registry("thing", {"ring8": "genbench.errors"}, group="test.group", adopt=adopt)
    assert "ring8" in registry  # the built-in: no entry point read
    with pytest.warns(UserWarning) as caught:
        assert registry.names() == ["ring8"]
    assert len(caught) == 3 and "thing 'ring8' exists already" in str(caught[0].message)
    with pytest.raises(ConfigError, match="lost.*cannot import no_such_module_xyz:SPEC: ModuleNotFoundError") as err:
        registry.check("lost", key="data.name")
    assert "uninstall" in str(err.value)
    with pytest.raises(ConfigError, match="odd.*names a function"):
        registry.check("odd")
