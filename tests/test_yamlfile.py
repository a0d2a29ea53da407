"""load_yaml: file:line for malformed YAML, a mapping at the top level, 1-based lines of nested keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbench.errors import ConfigError
from genbench.yamlfile import load_yaml


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, line",
    [("a: 1\nb: 2\n  c: 3\n", 3), ("a: 1\nb: [1, 2\nc: 3\n", 3), ("a: 1\nb: !!python/object:os.system x\n", 2)],
)
def test_malformed_yaml_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and "YAML" in str(err.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="mapping") as err:
        load_yaml(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_yaml(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(err.value)


def test_lines_of_nested_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# comment\nstudy: s\nspace:\n  gan.loss: {choice: [hinge]}\n  optim.lr_g:\n"
        "    float: [1.0e-5, 1.0e-2]\nobjectives:\n  - {metric: quality.modes, mode: max}\n",
    )
    doc = load_yaml(path)
    assert doc.data["space"]["gan.loss"] == {"choice": ["hinge"]}
    assert doc.lines["study"] == 2 and doc.lines["space"] == 3
    assert doc.lines["space.gan.loss"] == 4 and doc.lines["space.optim.lr_g"] == 5
    assert doc.lines["space.optim.lr_g.float"] == 6 and doc.lines["objectives[0].metric"] == 8
    assert doc.where("space.nokey", "space.optim.lr_g") == f"{path}:5"
    assert doc.where("nokey") == str(path)


def test_merge_keys_are_valid_yaml(tmp_path: Path) -> None:
    doc = load_yaml(_write(tmp_path, "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n"))
    assert doc.data["derived"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    "text, first, second, key",
    [
        ("study: s\nbudget: {trials: 4}\nspace: {}\nbudget: {trials: 9}\n", 2, 4, "budget"),  # the last would win
        (
            "space:\n  gan.loss: {choice: [hinge]}\n  optim.lr: {float: [0.1, 1]}\n"
            "  gan.loss: {choice: [wasserstein]}\n",
            2,
            4,
            "space.gan.loss",
        ),
        ("a: {x: 1,\n    x: 2}\n", 1, 2, "a.x"),
        ("a:\n  - {m: 1}\n  - {m: 2, n: 1,\n     m: 3}\n", 3, 4, "a[1].m"),
    ],
)
def test_a_duplicate_key_is_refused_naming_both_lines(
    tmp_path: Path, text: str, first: int, second: int, key: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{second}: {key}: duplicate key") and f"also on line {first}" in message


def test_merge_keys_may_be_overridden_and_merged_mappings_reused(tmp_path: Path) -> None:
    doc = load_yaml(_write(tmp_path, "base: &b {x: 1, y: 1}\nd: &d {<<: *b, x: 2}\ne: *d\n"))
    assert doc.data["d"] == doc.data["e"] == {"x": 2, "y": 1}  # e walks d's merged node again: no false duplicate


@pytest.mark.parametrize(
    "text, needle",
    [
        ("study: s\na: &x [*x]\n", "refers to the value that contains it"),
        ("study: s\na: &x {b: {c: *x}}\n", "refers to the value that contains it"),
        ("study: s\na: &x {b: {<<: *x}}\n", "refers to the value that contains it"),
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
            "expands to more than",
        ),  # a billion laughs, 10^5 values
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("? [1, 2]\n: 3\n", "a key must be a name or number"),
    ],
)
def test_recursive_explosive_and_odd_documents_are_one_error(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert str(err.value).startswith(str(path)) and needle in str(err.value) and "\n" not in str(err.value)


def test_a_file_that_is_not_utf8_text_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_bytes(b"study: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_yaml(path)
