"""The shipped studies are package data: named on the command line, listed, copied out to edit (never over a file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
import yaml

from genbench.cli import main
from genbench.errors import ConfigError
from genbench.shipped import STUDIES, copy_study, resolve_study, study_names

ROOT = Path(__file__).resolve().parents[1]


def test_the_studies_are_package_data_named_by_their_files() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert STUDIES == ROOT / "platform/genbench/studies" and "studies/*.yaml" in package_data["genbench"]
    assert len(study_names()) >= 8
    for name in study_names():  # `genbench dry-run NAME` runs the study whose `study:` is NAME
        assert yaml.safe_load((STUDIES / f"{name}.yaml").read_text())["study"] == name


def test_a_name_is_a_shipped_study_and_an_existing_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_study("gan_stability") == str(STUDIES / "gan_stability.yaml")
    Path("gan_stability").write_text("study: mine\n")  # a file of that name here is what the user means
    assert resolve_study("gan_stability") == "gan_stability"
    assert resolve_study(tmp_path / "gan_stability") == str(tmp_path / "gan_stability")


@pytest.mark.parametrize(
    "given, message",
    [
        ("gan_stabilty", "no such shipped study 'gan_stabilty' (did you mean 'gan_stability'? shipped studies: "),
        ("nothing_like_it", "no such shipped study 'nothing_like_it' (shipped studies: autoregressive, diffusion, "),
        ("search_spaces/vae.yaml", "search_spaces/vae.yaml: no such study file (did you mean 'vae'? shipped "),
    ],
)
def test_an_unknown_study_is_one_line_listing_the_shipped_names(
    given: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["dry-run", given, "--out", "never"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"genbench: error: {message}") and err.count("\n") == 1, err
    assert all(name in err for name in study_names()) and "or give a study file's path" in err
    assert not Path("never").exists()


def test_list_studies_names_each_with_its_families_and_description(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "studies", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    entries = {e["name"]: e for e in doc["entries"]}
    assert doc["what"] == "studies" and sorted(entries) == study_names()
    assert entries["families"]["families"] == ["gan", "vae", "diffusion", "autoregressive", "flow"]
    assert entries["gan_stability"]["families"] == ["gan"] and entries["gan_stability"]["description"]
    assert Path(entries["vae"]["file"]) == STUDIES / "vae.yaml"
    assert main(["list", "studies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(entries) and lines[study_names().index("families")].split()[:2] == ["families", "[gan,"]


def test_copy_study_writes_a_copy_to_edit_and_never_overwrites_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = (STUDIES / "vae.yaml").read_bytes()
    assert main(["copy-study", "vae"]) == 0  # default: ./vae.yaml
    assert Path("vae.yaml").read_bytes() == shipped and "genbench dry-run vae.yaml" in capsys.readouterr().out
    Path("mine.yaml").write_text("my edits\n")
    assert main(["copy-study", "vae", "mine.yaml"]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml: already exists; not overwritten" in err and "--force" in err
    assert Path("mine.yaml").read_text() == "my edits\n"
    assert main(["copy-study", "vae", "mine.yaml", "--force"]) == 0 and Path("mine.yaml").read_bytes() == shipped
    (tmp_path / "studies").mkdir()
    assert copy_study("flow", "studies") == Path("studies/flow.yaml")  # into a folder, under its own name
    assert copy_study("flow", "new/dir/") == Path("new/dir/flow.yaml")
    with pytest.raises(ConfigError, match="no such shipped study 'flwo' .did you mean 'flow'"):
        copy_study("flwo")


def test_validate_takes_a_shipped_study_by_name(capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", *study_names()]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[study_names().index("vae")].startswith("ok    vae: study 'vae', family vae")


def test_a_searched_key_of_a_shipped_study_points_to_a_copy_not_the_package(tmp_path: Path) -> None:
    """The shipped file lives in the installed package: the fix is to copy it out, not to edit it there."""
    from genbench.sweep.spec import check_overrides, load_study

    for path, fix in [
        (
            STUDIES / "gan_stability.yaml",
            "genbench copy-study gan_stability, then edit gan.loss in the copy and run that",
        ),
        (Path(copy_study("gan_stability", str(tmp_path))), f"edit gan.loss in {tmp_path}/gan_stability.yaml instead"),
    ]:
        study = load_study(path)
        with pytest.raises(ConfigError, match="is searched by the study") as refused:
            check_overrides(study, study.dry_run, {"gan.loss": "hinge"})
        assert refused.value.fix == fix
