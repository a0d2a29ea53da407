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


@pytest.mark.parametrize("text, line", [("a: 1\nb: 2\n  c: 3\n", 3), ("a: 1\nb: [1, 2\nc: 3\n", 3),
                                        ("a: 1\nb: !!python/object:os.system x\n", 2)])
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
    path = _write(tmp_path, "# comment\nstudy: s\nspace:\n  gan.loss: {choice: [hinge]}\n  optim.lr_g:\n"
                            "    float: [1.0e-5, 1.0e-2]\nobjectives:\n  - {metric: quality.modes, mode: max}\n")
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
