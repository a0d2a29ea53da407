"""A study's data set: checked before anything is written, loaded once and shared with every trial, and a data
error inside trials fails each of them once (not retried as a lost process); every trial failed exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from genbench.cli import main

STUDY = """
study: points
family: gan
data: {{name: files{path}}}
objectives: [{{metric: quality.swd, mode: min}}]
budget: {{trials: 3, steps: 40, eval_every: 20}}
dry_run: {{trials: 3, steps: 40, eval_every: 20}}
search: {{algorithm: random, seed: 0}}
fixed: {{gan.g_width: 16, gan.d_width: 16, gan.g_depth: 2, gan.d_depth: 2, train.batch_size: 64,
        eval.n_samples: 200}}
space:
{space}"""
LR = "  optim.lr_g: {float: [1.0e-4, 1.0e-3], log: true}\n"


def _points(path: Path) -> Path:
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 800)
    np.save(path, np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32))
    return path


def _study(root: Path, path: str = "", space: str = LR) -> Path:
    study = root / "s.yaml"
    study.write_text(STUDY.format(path=f", path: {path}" if path else "", space=space))
    return study


def test_validate_refuses_a_data_path_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(_study(tmp_path, "nowhere.npy"))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error {tmp_path / 's.yaml'}:4: data.path: no such file or folder")
    _points(tmp_path / "nowhere.npy")
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0


def test_a_bad_data_set_fails_the_dry_run_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    assert main(["dry-run", str(_study(tmp_path, str(tmp_path / "empty"))), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no image files" in err[0] and not out.exists()


@pytest.mark.ray
def test_the_data_set_is_loaded_once_by_the_driver_and_shared_with_the_trials(tmp_path: Path) -> None:
    """The driver loads the file and shares it through Ray's object store: the file is deleted as soon as the
    driver says it has loaded it, and every trial still trains on it (none opens the file)."""
    data = _points(tmp_path / "circle.npy")
    cmd = [sys.executable, "-m", "genbench", "dry-run", str(_study(tmp_path, "circle.npy")), "--out", "out"]
    driver = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in driver.stdout:
        lines.append(line)
        if line.startswith("Data: circle.npy, 720 training and 80 test examples of shape (2,), loaded once"):
            data.unlink()
    driver.wait(timeout=300)
    assert driver.returncode == 0 and not data.exists(), "".join(lines)[-2000:] + driver.stderr.read()[-2000:]
    trials = ds.dataset(tmp_path / "out" / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}, trials[["status", "error"]]


VAE_ON_POINTS = """
study: unfit
family: vae
data: {name: ring8, n_train: 500, n_test: 200}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 3, steps: 20, eval_every: 10}
dry_run: {trials: 3, steps: 20, eval_every: 10}
search: {algorithm: random, seed: 0}
fixed: {eval.n_samples: 200}
space:
  vae.likelihood: {choice: [bernoulli, categorical]}   # image likelihoods: every trial's build refuses ring8
"""


@pytest.mark.ray
def test_a_setting_that_does_not_fit_the_data_fails_each_trial_once_and_the_study_exits_non_zero(
    tmp_path: Path,
) -> None:
    """The user's error, the same on every try: each trial fails once with the message (no 'lost its process'
    retries), and a study whose every trial failed exits 1."""
    (tmp_path / "s.yaml").write_text(VAE_ON_POINTS)
    proc = subprocess.run(
        [sys.executable, "-m", "genbench", "dry-run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "lost its process" not in proc.stdout and "every trial failed" in proc.stderr
    trials = ds.dataset(tmp_path / "out" / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == 3 and set(trials["status"]) == {"failed"}
    assert trials["error"].str.contains("vae.likelihood: '(?:bernoulli|categorical)' needs image data").all(), trials[
        "error"
    ].tolist()
