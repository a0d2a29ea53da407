"""The command line as a user meets it: listings, validation, one training run, clear errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from genbench.cli import main
from genbench.commands import listing_line
from genbench.shipped import STUDIES

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "train.steps=20",
    "--set",
    "train.batch_size=32",
    "--set",
    "eval.every=10",
    "--set",
    "eval.n_samples=300",
    "--set",
    "gan.g_width=16",
    "--set",
    "gan.d_width=16",
    "--set",
    "data.n_train=1000",
]


@pytest.mark.parametrize(
    "what,expected",
    [
        ("families", "gan"),
        ("datasets", "grid25"),
        ("metrics", "quality.modes"),
        ("gan-variants", "wgan_gp"),
        ("studies", "gan_stability"),
    ],
)
def test_list_describes_each_entry_in_one_line(what: str, expected: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["list", what]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.split()[0] == expected or expected in line.split()[:2] for line in lines)
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # a name and a description on every line
    assert main(["list", what, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # stdout is the document alone
    assert doc["what"] == what and expected in [e["name"] for e in doc["entries"]]
    assert [listing_line(e) for e in doc["entries"]] == lines  # the same entries as the text, field by field
    assert all(e["description"] for e in doc["entries"])
    assert what != "metrics" or {e["better"] for e in doc["entries"]} == {"max", "min"}


def test_validate_accepts_every_shipped_study(capsys: pytest.CaptureFixture) -> None:
    files = sorted(str(p) for p in STUDIES.glob("*.yaml"))
    assert files and main(["validate", *files]) == 0
    assert capsys.readouterr().out.count("ok ") == len(files)


def test_validate_rejects_a_typo_with_file_line_key_and_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    text = (STUDIES / "gan_stability.yaml").read_text().replace("gan.spectral_norm:", "gan.spectral_nrom:")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "spectral_nrom" in s)
    assert f"{bad}:{line}: gan.spectral_nrom" in err and "did you mean 'gan.spectral_norm'" in err


def test_train_writes_results_like_a_trial_and_a_dashboard(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("genbench.sweep.tuner", "ray", "optuna"):  # importing the Tune driver, Ray or Optuna would fail:
        monkeypatch.setitem(sys.modules, module, None)  # an in-process run needs none of them
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "ring8", "--preset", "lsgan", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Dashboard: {out}/dashboards/index.html" in printed and "Resolved config" in printed
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pylist()
    assert len(trials) == 1 and trials[0]["config.gan.loss"] == "least_squares"
    assert trials[0]["status"] == "completed" and trials[0]["config.train.steps"] == 20
    assert json.loads((out / "config.json").read_text())["data.name"] == "ring8"
    assert (out / "dashboards" / "stability.html").exists()


def test_rerun_moves_earlier_results_aside_instead_of_overwriting(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "gan", *TINY, "--out", str(out)]) == 0
    first = (out / "trials").iterdir().__next__().read_bytes()
    assert main(["train", "gan", *TINY, "--set", "seed=1", "--out", str(out)]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.")]
    assert len(aside) == 1 and next((aside[0] / "trials").iterdir()).read_bytes() == first


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "gan", "--set", "gan.los=hinge"], "did you mean 'gan.loss'"),
        (["train", "gan", "--set", "train.steps=many"], "train.steps: expected an integer"),
        (["train", "gan", "--data", "grid52"], "did you mean 'grid25'"),
        (["train", "gan", "--preset", "wgan-gp"], "did you mean 'wgan_gp'"),
        (["train", "gna"], "unknown family 'gna'"),
        (["dashboard", "no/such/dir"], "not found"),
        (["report", "no/such/dir", "--markdown", "--json"], "--json: --markdown and --json both given"),
        (["jobs", "logs", "some-job", "--json"], "--json: jobs logs has no JSON output"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "never")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.startswith("genbench: error:") and len(err.splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_console_script_help_runs_from_a_fresh_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "genbench", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "dry-run" in proc.stdout and "validate" in proc.stdout


def test_train_rows_carry_likelihood_and_provenance(tmp_path: Path) -> None:
    out = tmp_path / "ar"
    assert (
        main(
            [
                "train",
                "autoregressive",
                "--data",
                "grid25",
                "--set",
                "train.steps=5",
                "--set",
                "eval.every=5",
                "--set",
                "data.n_train=500",
                "--set",
                "eval.n_samples=200",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    row = ds.dataset(out / "trials", format="parquet").to_table().to_pylist()[0]
    assert row["likelihood.method"] == "exact" and row["likelihood.nll"] == row["likelihood.nll"]
    assert row["provenance.reference"] == "grid25 test split"


def test_train_progress_prints_at_evaluations_and_every_ten_seconds_between(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from genbench import commands

    clock = iter([0.0, 4.0, 11.0, 12.0, 30.0])  # start, then one reading per report
    monkeypatch.setattr(commands.time, "monotonic", lambda: next(clock))
    history: list[dict] = []
    report = commands._train_reporter(history, 100)
    report(10, {"train.loss": 1.5})  # 4 s: too soon, kept but not printed
    report(20, {"train.loss": 1.25, "train.grad_norm": 3.0})  # 11 s: a window line with the losses only
    report(25, {"train.loss": 1.0, "eval.fd": 7.5})  # an evaluation prints at once
    report(50, {"train.loss": 0.5})  # 30 s: 18 s after the last line
    lines = capsys.readouterr().out.splitlines()
    assert [h["step"] for h in history] == [10, 20, 25, 50]
    assert lines[0] == "step 20/100 | train.loss 1.25 | 11.0s elapsed, ~44s left"
    assert lines[1].startswith("step 25/100 | eval.fd 7.5 |") and lines[2].startswith("step 50/100 | train.loss 0.5")
    assert len(lines) == 3


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`genbench list keys | head -1`: the pipe closes before the output is written; no traceback, exit 141."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "genbench", "list", "keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before genbench has imported anything: its first write meets a closed pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_json_output_is_the_document_alone_with_nan_as_null(capsys: pytest.CaptureFixture) -> None:
    """What a command prints inside its --json block goes to stderr; NaN (not JSON) is null, numpy's ints numbers."""
    import numpy as np

    from genbench.jsonout import json_output

    with json_output() as write:
        print("a note on the way")
        write({"value": float("nan"), "n": np.int64(3), "interval": (1.0, float("inf"))})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"value": None, "n": 3, "interval": [1.0, None]}
    assert captured.err == "a note on the way\n"
