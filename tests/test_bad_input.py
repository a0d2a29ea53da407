"""Broken user files of every kind through the CLI: exit 2 (validate: 1), one line naming file and key, no traceback."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import tempfile
import zipfile
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
from genbench.config import parse_set
from genbench.errors import ConfigError, GenbenchError
from genbench.shipped import STUDIES
from genbench.sweep.spec import BUDGET_KEYS, SEARCH_KEYS, TOP_KEYS, load_study
from genbench.yamlfile import load_yaml
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
    "objectives_not_list": (
        "objectives:\n  - {metric: quality.modes, mode: max}",
        "objectives: quality.modes",
        ["objectives", "non-empty list"],
    ),
    "mode_typo": ("mode: max}", "mode: maximum}", ["objectives[0]", "max or min"]),
    "unknown_dataset": ("name: grid25", "name: grid26", ["data.name", "did you mean 'grid25'"]),
    "data_unknown_key": ("data: {name: grid25}", "data: {name: grid25, n_trian: 10}", ["data.n_trian", "n_train"]),
    "family_a_number": ("family: gan", "family: 3", ["family", "unknown family"]),
    "family_nested_list": ("family: gan", "family: [[gan]]", ["family", "unknown family"]),
    "tab_indent": ("fixed:\n  train", "fixed:\n\ttrain", ["malformed YAML"]),
    "python_tag": ("study: tiny", "study: !!python/object/apply:os.system [echo]", ["malformed YAML", "tag"]),
    "duplicate_key": (
        "dry_run: {trials: 2, steps: 10}",
        "dry_run: {trials: 2, steps: 10}\nbudget: {trials: 9}",
        ["budget", "duplicate key", "also on line 6"],
    ),
    "recursive_alias": ("fixed:\n", "description: &x [*x]\nfixed:\n", ["description[0]", "refers to the value"]),
    "missing_budget": ("budget: {trials: 4, steps: 100, eval_every: 50}\n", "", ["budget", "missing section"]),
    "nan_step": ("{int: [1, 3]}", "{int: [1, 3], step: .nan}", ["gan.d_steps", "step"]),
    "nan_success": (
        "budget:",
        "success: {metric: quality.modes, at_least: .nan}\nbudget:",
        ["success.at_least", "nan"],
    ),
    "inf_fixed": ("train.batch_size: 64", "train.diverge_loss: .inf", ["train.diverge_loss", "finite"]),
}

CLUSTER = {  # (file to start from, old, new, text the message must name)
    "profile_unknown_key": ("local.yaml", "  gpus_per_node: 0", "  gpus_per_nod: 0", ["genbench.gpus_per_nod"]),
    "profile_wrong_type": (
        "local.yaml",
        "price_per_node_hour: 0.0",
        "price_per_node_hour: free",
        ["genbench.price_per_node_hour"],
    ),
    "profile_malformed": ("local.yaml", "  name: local", "  name: [local", ["malformed YAML"]),
    "launcher_unknown_key": ("aws-gpu.yaml", "max_workers: 8\nupscaling", "max_wrkers: 8\nupscaling", ["max_wrkers"]),
    "launcher_wrong_type": (
        "gcp-gpu.yaml",
        "resources: {CPU: 8, GPU: 1}",
        "resources: {CPU: eight, GPU: 1}",
        ["resources.CPU"],
    ),
    "profile_duplicate_key": (
        "local.yaml",
        "  python: python",
        "  python: python\n  gpus_per_node: 1",
        ["genbench.gpus_per_node", "duplicate key", "also on line 9"],
    ),
    "profile_nan_price": (
        "local.yaml",
        "price_per_node_hour: 0.0",
        "price_per_node_hour: .nan",
        ["genbench.price_per_node_hour", "finite"],
    ),
    "profile_inf_price": (
        "local.yaml",
        "price_per_node_hour: 0.0",
        "price_per_node_hour: .inf",
        ["genbench.price_per_node_hour", "finite"],
    ),
    "kuberay_replicas_word": (
        "kuberay/raycluster.yaml",
        "  replicas: 0\n",
        "  replicas: one\n",
        ["workerGroupSpecs[0].replicas", "integers"],
    ),
}

DASHBOARD = {  # definition file text, text the message must name
    "unknown_kind": (
        "page: x\npanels:\n  - {id: a, kind: by_grup, columns: {metric: objective, group: family}}\n",
        ["panels[0].kind", "by_group"],
    ),
    "unknown_column": (
        "page: x\npanels:\n  - {id: a, kind: by_group, columns: {metric: quality.mods, group: family}}\n",
        ["panels[0].columns.metric", "quality.modes"],
    ),
    "unknown_page_key": ("page: x\npanel:\n  - {id: a, kind: rates, columns: {group: family}}\n", ["panel"]),
    "panels_not_list": ("page: x\npanels: {id: a}\n", ["panels", "list of panels"]),
    "page_name_wrong_type": ("page: [x]\npanels:\n  - {id: a, kind: rates, columns: {group: family}}\n", ["page"]),
    "malformed": ("page: x\npanels:\n  - {id: a, kind: rates\n", ["malformed YAML"]),
    "duplicate_key": (
        "page: x\npanels:\n  - id: a\n    kind: rates\n    columns: {group: family}\n    kind: curves\n",
        ["panels[0].kind", "duplicate key", "also on line 4"],
    ),
    "order_nan": (
        "page: x\norder: .nan\npanels:\n  - {id: a, kind: rates, columns: {group: family}}\n",
        ["order", "integer"],
    ),
    "order_word": (
        "page: x\norder: first\npanels:\n  - {id: a, kind: rates, columns: {group: family}}\n",
        ["order", "integer"],
    ),
    "where_nan": (
        "page: x\npanels:\n  - {id: a, kind: rates, columns: {group: family}, where: {quality.modes: .nan}}\n",
        ["panels[0].where.quality.modes", "NaN"],
    ),
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
    result = subprocess.run(
        [sys.executable, "-m", "genbench", "validate", *(str(p) for p, _ in corpus)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
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
    code = main(
        [
            "train",
            "autoregressive",
            "--data",
            "files",
            "--set",
            f"data.path={path}",
            "--set",
            "train.steps=2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("genbench: error: ") and str(path) in err and needle in err, err


# Property: random study documents never make load_study raise anything but a GenbenchError.

JUNK_KEYS = [
    "",
    "x",
    "gan.loss",
    "optim.lr_g",
    "data.name",
    "choice",
    "float",
    "int",
    "log",
    "when",
    "step",
    "metric",
    "mode",
    "name",
    "train.steps",
    "seed",
    "family",
    "..",
    "a/b",
    "0",
]
KEYS = st.sampled_from([*TOP_KEYS, *BUDGET_KEYS, *SEARCH_KEYS, *JUNK_KEYS])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True),
    st.sampled_from(
        ["gan", "vae", "grid25", "ring8", "hinge", "max", "min", "quality.modes", "tpe", "asha", "", "../x", "1e-3"]
    ),
    st.text(max_size=8),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
BASE_DOC: dict[str, Any] = yaml.safe_load(BASE)
DOCS = st.one_of(
    st.dictionaries(KEYS, TREES, max_size=8),
    st.dictionaries(st.sampled_from(TOP_KEYS), TREES, max_size=3).map(lambda d: {**BASE_DOC, **d}),
    st.dictionaries(KEYS, TREES, max_size=3).map(lambda d: {**BASE_DOC, "space": {**BASE_DOC["space"], **d}}),
    TREES,
)


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


# Strict input (issue 17): each of these was a traceback, a silent acceptance or a moved directory before.


def _one_line(capsys: pytest.CaptureFixture, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("genbench: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    "kind, text, key, lines",
    [
        (
            "study",
            BASE.replace(
                "  gan.d_steps: {int: [1, 3]}\n", "  gan.d_steps: {int: [1, 3]}\n  gan.loss: {choice: [hinge]}\n"
            ),
            "space.gan.loss",
            (11, 16),
        ),
        ("cluster", "genbench:\n  name: a\n  storage: results\n  name: b\n", "genbench.name", (2, 4)),
        (
            "dashboard",
            "page: x\npanels:\n  - {id: a, kind: rates, columns: {group: family, group: status}}\n",
            "panels[0].columns.group",
            (3, 3),
        ),
    ],
)
def test_a_duplicate_key_in_any_file_is_refused_naming_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture, kind: str, text: str, key: str, lines: tuple[int, int]
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == f"error {path}:{lines[1]}: {key}: duplicate key: also on line {lines[0]} "
        "(keep one of them; YAML would silently keep only the last)"
    ), err


def test_a_recursive_alias_in_a_study_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("fixed:\n  train.batch_size: 64\n", "fixed: &f\n  train.batch_size: [*f]\n"))
    assert main(["dry-run", str(path), "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, f"{path}:8: fixed.train.batch_size[0]: an alias refers to the value that contains it")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["[1,", "{a: 1", "&x [*x]", "!!python/name:os.system", "'open", "{a: 1, a: 2}"])
@pytest.mark.parametrize("command", ["train", "dry-run"])
def test_a_set_value_that_is_not_yaml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch, value: str, command: str
) -> None:
    monkeypatch.setattr("genbench.sweep.tuner.run_sweep", _no_sweep)
    study = tmp_path / "s.yaml"
    study.write_text(BASE)
    target = ["train", "gan"] if command == "train" else ["dry-run", str(study)]
    assert main([*target, "--set", f"train.steps={value}", "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, "--set: train.steps: cannot read")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "pair",
    [
        "gan.clip=nan",
        "gan.penalty_weight=.nan",
        "train.diverge_loss=.inf",
        "optim.lr_g=NaN",
        "train.diverge_loss=1e999",
    ],
)
def test_nan_and_inf_run_keys_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, pair: str
) -> None:
    out = tmp_path / "out"
    assert main(["train", "gan", "--set", pair, "--set", "train.steps=2", "--out", str(out)]) == 2
    _one_line(capsys, f"--set: {pair.partition('=')[0]}: ")
    assert not out.exists()


def test_a_nan_gpu_count_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["train", "gan", "--gpus-per-worker", "nan", "--set", "train.steps=2", "--out", str(out)]) == 2
    _one_line(capsys, "--workers")
    assert not out.exists()


class _SweepStarted(Exception):
    """Raised by the stand-in for run_sweep: the command got past its checks."""


def _no_sweep(study: Any, budget: Any, out: str, label: str, overrides: Any = None, **kwargs: Any) -> Any:
    raise _SweepStarted(study, out, overrides)


def _earlier_results(tmp_path: Path) -> tuple[Path, set[str]]:
    from synthetic_study import synthetic_study

    out = tmp_path / "out"
    synthetic_study(str(out), configs=1, seeds=1)
    return out, {str(p.relative_to(out)) for p in out.rglob("*")}


@pytest.mark.parametrize(
    "pair, needles",
    [
        ("optim.lrr=1e-3", ["optim.lrr", "did you mean 'optim.lr_g'"]),  # not a key of the family
        ("train.steps=-1", ["train.steps", "> 0"]),
        ("gan.clip=.nan", ["gan.clip", "finite"]),
        ("gan.loss=hinge", ["gan.loss", "searched by the study"]),  # the searcher's choice would be overwritten
        ("gan.penalty_weight=5", ["gan.penalty_weight", "searched by the study"]),
        ("family=vae", ["family", "the study's family"]),
        ("resources.workers=many", ["resources.workers", "integer"]),
    ],
)
def test_bad_overrides_are_refused_before_earlier_results_are_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, pair: str, needles: list[str]
) -> None:
    monkeypatch.setattr("genbench.sweep.tuner.run_sweep", _no_sweep)
    study = tmp_path / "s.yaml"
    study.write_text(BASE)
    out, before = _earlier_results(tmp_path)
    assert main(["dry-run", str(study), "--set", pair, "--out", str(out)]) == 2
    _one_line(capsys, "--set", *needles)
    assert {str(p.relative_to(out)) for p in out.rglob("*")} == before  # nothing moved aside, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]


def test_a_key_of_one_family_only_is_refused_in_a_families_study(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genbench.sweep.tuner.run_sweep", _no_sweep)
    families = STUDIES / "families.yaml"
    assert main(["dry-run", str(families), "--set", "gan.loss=hinge", "--out", str(tmp_path / "out")]) == 2
    _one_line(
        capsys,
        "--set: gan.loss: a key of gan only; the vae, diffusion, autoregressive and flow trials",
        "in the study file: fixed: {gan: {gan.loss: VALUE}}",
    )
    assert not (tmp_path / "out").exists()


def test_resources_and_run_key_overrides_still_reach_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genbench.sweep.tuner.run_sweep", _no_sweep)
    study = tmp_path / "s.yaml"
    study.write_text(BASE)
    with pytest.raises(_SweepStarted) as started:
        main(
            [
                "dry-run",
                str(study),
                "--set",
                "resources.gpus_per_trial=0.25",
                "--set",
                "resources.cpus_per_trial=2",
                "--set",
                "train.diverge_loss=1000.0",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    sweep, _, overrides = started.value.args
    assert (sweep.gpus_per_trial, sweep.cpus_per_trial) == (0.25, 2) and overrides == {"train.diverge_loss": 1000.0}


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_an_out_of_range_port_is_one_line_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture, port: str
) -> None:
    out, before = _earlier_results(tmp_path)
    assert main(["dashboard", str(out), "--serve", "--port", port]) == 2
    _one_line(capsys, f"--port: expected a port in 0..65535, got {port}")
    assert {str(p.relative_to(out)) for p in out.rglob("*")} == before


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A valid 8x8 PNG whose header (IHDR) then claims width x height pixels, with a correct checksum."""
    import struct
    import zlib

    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def _image_bomb(path: Path) -> None:
    path.mkdir()
    _png(path / "a.png", (8, 8))
    _png_claiming(path / "b.png", 100_000, 100_000)  # 10^10 pixels: Pillow's DecompressionBombError


def _large_image(path: Path) -> None:
    path.mkdir()
    _png_claiming(path / "a.png", 10_000, 10_000)  # 10^8 pixels: over Image.MAX_IMAGE_PIXELS, Pillow only warns


def _npz_bomb(path: Path) -> None:
    """An .npz whose array header claims 10^12 float64 values (7 TiB) in a few hundred bytes."""
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    member.write(b"\0" * 64)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", member.getvalue())


def _npy_claiming(path: Path) -> None:
    member = io.BytesIO()
    np.lib.format.write_array_header_2_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    path.write_bytes(member.getvalue() + b"\0" * 64)


BOMBS = {  # name: (builder, suffix, text the message must name)
    "png_header_10g_pixels": (_image_bomb, "", "decompression bomb"),
    "png_over_pillow_limit": (_large_image, "", "decompression bomb"),
    "npz_7_tib": (_npz_bomb, ".npz", "7,450.6 GiB in memory"),
    "npy_header_7_tib": (_npy_claiming, ".npy", "GiB in memory"),
    "not_parquet": (lambda p: p.write_text("hello"), ".parquet", "not a readable Parquet file"),
}


@pytest.mark.parametrize("name", BOMBS)
def test_decompression_bombs_are_one_line_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    make, suffix, needle = BOMBS[name]
    path = tmp_path / f"bad{suffix}"
    make(path)
    code = main(
        [
            "train",
            "autoregressive",
            "--data",
            "files",
            "--set",
            f"data.path={path}",
            "--set",
            "train.steps=2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    _one_line(capsys, str(path), needle)
    assert code == 2


def test_a_parquet_file_that_decompresses_past_the_limit_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genbench.data.files.MAX_DATA_BYTES", 2**20, raising=False)  # 1 MiB stands for the real 8 GiB
    path = tmp_path / "images.parquet"
    pq.write_table(pa.table({"image": [bytes(4 * 2**20)]}), path, compression="zstd")  # 4 MiB of zeros
    assert path.stat().st_size < 2**16
    code = main(
        [
            "train",
            "autoregressive",
            "--data",
            "files",
            "--set",
            f"data.path={path}",
            "--set",
            "train.steps=2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    _one_line(capsys, str(path), "decompresses to")
    assert code == 2


# Property: random YAML text never makes load_yaml, or a --set value, raise anything but a ConfigError.

YAML_TEXT = st.lists(
    st.sampled_from([*"ab01 :-,[]{}&*!|>?'\"#\n.~<", "  ", ": ", "- ", "&x ", "*x", "<<: ", ".nan", "!!", "\n  "]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=YAML_TEXT)
@example(text="a: &x [*x]\n")
@example(text="a: &x {b: *x}\n")
@example(text="a: 1\na: 2\n")
@example(text="? [a]\n: 1\n")
def test_random_yaml_text_raises_only_config_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.yaml"
        path.write_text(text)
        for call in (lambda: load_yaml(path), lambda: parse_set([f"train.steps={text}"])):
            try:
                call()
            except ConfigError as exc:
                assert "\n" not in str(exc).strip()


# Property: random dashboard definitions and cluster profiles raise only GenbenchErrors naming the file.

PAGE_WORDS = [
    "page",
    "title",
    "order",
    "intro",
    "panels",
    "id",
    "kind",
    "columns",
    "where",
    "log_x",
    "log_y",
    "note",
    "metric",
    "group",
    "x",
    "y",
    "params",
    "rates",
    "curves",
    "family",
    "quality.modes",
    "objective",
]
PAGE_TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(PAGE_WORDS), inner, max_size=4)
    ),
    max_leaves=12,
)
PROFILE_WORDS = [
    "genbench",
    "name",
    "address",
    "storage",
    "gpu_type",
    "gpus_per_node",
    "cpus_per_node",
    "max_nodes",
    "price_per_node_hour",
    "trial_resources",
    "python",
    "pip",
    "env",
    "cpus_per_trial",
    "workers",
]
PROFILE_TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(PROFILE_WORDS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.dictionaries(st.sampled_from(PAGE_WORDS), PAGE_TREES, max_size=5),
    profile=st.dictionaries(st.sampled_from(PROFILE_WORDS), PROFILE_TREES, max_size=6),
)
@example(
    page={"page": "x", "order": math.nan, "panels": [{"kind": "rates", "columns": {"group": "family"}}]},
    profile={"name": "x", "storage": "results", "price_per_node_hour": math.nan},
)
def test_random_dashboards_and_profiles_raise_only_genbench_errors(
    page: dict[str, Any], profile: dict[str, Any]
) -> None:
    from genbench.cluster.profiles import load_profile
    from genbench.dashboards.spec import load_page

    with tempfile.TemporaryDirectory() as tmp:
        for name, doc, load in (("page.yaml", page, load_page), ("profile.yaml", {"genbench": profile}, load_profile)):
            path = Path(tmp) / name
            path.write_text(yaml.safe_dump(doc, allow_unicode=True))
            try:
                load(path)
            except GenbenchError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc).strip()
