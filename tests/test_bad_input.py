"""Broken user files of every kind through the CLI: exit 2 (validate: 1), one line naming file and key, no traceback."""
from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from genbench.cli import main
from genbench.errors import GenbenchError
from genbench.sweep.spec import BUDGET_KEYS, SEARCH_KEYS, TOP_KEYS, load_study
from test_study import BASE, BROKEN  # the study corpus of tests/test_study.py, reused here through the CLI

ROOT = Path(__file__).resolve().parents[1]

STUDY_EXTRA = {  # more broken studies: (old, new, text the message must name besides the file)
    "trials_a_string": ("trials: 4,", "trials: four,", ["budget.trials", "integer"]),
    "budget_a_list": ("budget: {trials: 4, steps: 100, eval_every: 50}", "budget: [4, 100]", ["budget", "mapping"]),
    "space_entry_a_list": ("  gan.d_steps: {int: [1, 3]}", "  gan.d_steps: [1, 3]", ["gan.d_steps", "mapping"]),
    "int_range_floats": ("{int: [1, 3]}", "{int: [1.5, 3]}", ["gan.d_steps", "integers"]),
    "empty_range": ("{int: [1, 3]}", "{int: [3, 3]}", ["gan.d_steps", "empty or inverted"]),
    "nan_range": ("[1.0e-5, 1.0e-2]", "[.nan, 1.0e-2]", ["optim.lr_g", "range"]),
    "when_unknown_param": ("when: {gan.penalty:", "when: {gan.no_such:", ["gan.penalty_weight", "gan.no_such"]),
    "unknown_option": ("log: true, when", "logg: true, when", ["gan.penalty_weight", "did you mean 'log'"]),
    "objectives_not_list": ("objectives:\n  - {metric: quality.modes, mode: max}", "objectives: quality.modes",
                            ["objectives", "non-empty list"]),
    "mode_typo": ("mode: max}", "mode: maximum}", ["objectives[0]", "max or min"]),
    "unknown_dataset": ("name: grid25", "name: grid26", ["data.name", "did you mean 'grid25'"]),
    "data_unknown_key": ("data: {name: grid25}", "data: {name: grid25, n_trian: 10}", ["data.n_trian", "n_train"]),
    "family_a_number": ("family: gan", "family: 3", ["family", "unknown family"]),
    "family_nested_list": ("family: gan", "family: [[gan]]", ["family", "unknown family"]),
    "tab_indent": ("fixed:\n  train", "fixed:\n\ttrain", ["malformed YAML"]),
    "python_tag": ("study: tiny", "study: !!python/object/apply:os.system [echo]", ["malformed YAML", "tag"]),
}

CLUSTER = {  # (file to start from, old, new, text the message must name)
    "profile_unknown_key": ("local.yaml", "  gpus_per_node: 0", "  gpus_per_nod: 0", ["genbench.gpus_per_nod"]),
    "profile_wrong_type": ("local.yaml", "price_per_node_hour: 0.0", "price_per_node_hour: free",
                           ["genbench.price_per_node_hour"]),
    "profile_malformed": ("local.yaml", "  name: local", "  name: [local", ["malformed YAML"]),
    "launcher_unknown_key": ("aws-gpu.yaml", "max_workers: 8\nupscaling", "max_wrkers: 8\nupscaling",
                             ["max_wrkers"]),
    "launcher_wrong_type": ("gcp-gpu.yaml", "resources: {CPU: 8, GPU: 1}", "resources: {CPU: eight, GPU: 1}",
                            ["resources.CPU"]),
}

DASHBOARD = {  # definition file text, text the message must name
    "unknown_kind": ("page: x\npanels:\n  - {id: a, kind: by_grup, columns: {metric: objective, group: family}}\n",
                     ["panels[0].kind", "by_group"]),
    "unknown_column": ("page: x\npanels:\n  - {id: a, kind: by_group, columns: {metric: quality.mods, "
                       "group: family}}\n", ["panels[0].columns.metric", "quality.modes"]),
    "unknown_page_key": ("page: x\npanel:\n  - {id: a, kind: rates, columns: {group: family}}\n", ["panel"]),
    "panels_not_list": ("page: x\npanels: {id: a}\n", ["panels", "list of panels"]),
    "page_name_wrong_type": ("page: [x]\npanels:\n  - {id: a, kind: rates, columns: {group: family}}\n", ["page"]),
    "malformed": ("page: x\npanels:\n  - {id: a, kind: rates\n", ["malformed YAML"]),
}


def _write_corpus(tmp_path: Path) -> list[tuple[Path, list[str]]]:
    cases = []
    for name, (old, new, needles) in {**BROKEN, **STUDY_EXTRA}.items():
        assert old in BASE, name
        cases.append((tmp_path / f"study-{name}.yaml", BASE.replace(old, new, 1), needles))
    for name, (source, old, new, needles) in CLUSTER.items():
        text = (ROOT / "clusters" / source).read_text()
        assert old in text, name
        cases.append((tmp_path / f"cluster-{name}.yaml", text.replace(old, new, 1), needles))
    for name, (text, needles) in DASHBOARD.items():
        cases.append((tmp_path / f"dashboard-{name}.yaml", text, needles))
    for path, text, _ in cases:
        path.write_text(text)
    return [(path, needles) for path, _, needles in cases]


def test_every_broken_file_gets_one_line_naming_file_and_key_from_the_cli(tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path)
    result = subprocess.run([sys.executable, "-m", "genbench", "validate", *(str(p) for p, _ in corpus)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == len(corpus), result.stderr[-3000:]  # one line per file, in order
    for line, (path, needles) in zip(lines, corpus):
        assert line.startswith(f"error {path}"), line
        for needle in needles:
            assert needle in line, (path.name, line)


def test_a_broken_study_stops_dry_run_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("[1.0e-5, 1.0e-2]", "[1.0e-2, 1.0e-5]"))
    assert main(["dry-run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"genbench: error: {path}:") and "optim.lr_g" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _png(path: Path, size: tuple[int, int]) -> None:
    Image.new("L", size, 128).save(path)


def _mixed_sizes(path: Path) -> None:
    path.mkdir()
    _png(path / "a.png", (8, 8))
    _png(path / "b.png", (8, 8))
    _png(path / "c.png", (10, 8))


DATA = {  # name: (builder of the bad data at path, suffix, text the message must name besides the path)
    "mixed_sizes": (_mixed_sizes, "", "differs"),
    "nan": (lambda p: np.save(p, np.array([[0.1, math.nan], [0.2, 0.3]] * 4)), ".npy", "NaN"),
    "inf_images": (lambda p: np.save(p, np.full((4, 8, 8), np.inf, dtype=np.float32)), ".npy", "NaN, infinite"),
    "empty_folder": (lambda p: p.mkdir(), "", "no image files"),
    "not_an_image": (lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"not a png")), "", "not a readable image"),
    "no_image_column": (lambda p: pq.write_table(pa.table({"pixels": [1, 2]}), p), ".parquet", "no 'image' column"),
    "truncated_npy": (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00"), ".npy", "not a readable numpy file"),
    "unknown_format": (lambda p: p.write_text("hello"), ".txt", "unknown data format"),
    "missing": (lambda p: None, ".npy", "does not exist"),
}


@pytest.mark.parametrize("name", DATA)
def test_bad_dataset_files_through_train(tmp_path: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    make, suffix, needle = DATA[name]
    path = tmp_path / f"bad{suffix}"
    make(path)
    code = main(["train", "autoregressive", "--data", "files", "--set", f"data.path={path}", "--set",
                 "train.steps=2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("genbench: error: ") and str(path) in err and needle in err, err


# Property: random study documents never make load_study raise anything but a GenbenchError.

JUNK_KEYS = ["", "x", "gan.loss", "optim.lr_g", "data.name", "choice", "float", "int", "log", "when", "step",
             "metric", "mode", "name", "train.steps", "seed", "family", "..", "a/b", "0"]
KEYS = st.sampled_from([*TOP_KEYS, *BUDGET_KEYS, *SEARCH_KEYS, *JUNK_KEYS])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
                    st.sampled_from(["gan", "vae", "grid25", "ring8", "hinge", "max", "min", "quality.modes", "tpe",
                                     "asha", "", "../x", "1e-3"]), st.text(max_size=8))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
BASE_DOC: dict[str, Any] = yaml.safe_load(BASE)
DOCS = st.one_of(st.dictionaries(KEYS, TREES, max_size=8),
                 st.dictionaries(st.sampled_from(TOP_KEYS), TREES, max_size=3).map(lambda d: {**BASE_DOC, **d}),
                 st.dictionaries(KEYS, TREES, max_size=3).map(lambda d: {**BASE_DOC, "space": {**BASE_DOC["space"], **d}}),
                 TREES)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS)
@example(doc={**BASE_DOC, "family": []})  # found by this test: a list where a family name belongs
def test_random_study_documents_raise_only_genbench_errors(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
        try:
            load_study(path)
        except GenbenchError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc).strip()
