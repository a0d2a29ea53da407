"""Kept models: what a run saves, `genbench sample` and `genbench evaluate` on it, through the CLI and the Python
API, on a local path and S3, and the one-line errors of a run without a model."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pytest
import torch
import yaml
from PIL import Image

import genbench
from genbench.cli import main
from genbench.config import from_flat
from genbench.data import Dataset
from genbench.errors import GenbenchError
from genbench.families import FAMILIES
from genbench.train.evaluate import Evaluator

# A tiny GAN on ring8 with an EMA generator: 20 steps, 300 samples per evaluation (a few seconds)
TOY = ["gan", "--data", "ring8"] + [
    arg
    for setting in (
        "train.steps=20",
        "train.batch_size=32",
        "eval.every=10",
        "eval.n_samples=300",
        "gan.g_width=16",
        "gan.d_width=16",
        "gan.ema=0.9",
        "data.n_train=1000",
        "data.n_test=500",
    )
    for arg in ("--set", setting)
]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `genbench train` run on toy data (in this process, no Ray): its results folder, with models/run-0.pt."""
    out = tmp_path_factory.mktemp("kept") / "run"
    assert main(["train", *TOY, "--out", str(out)]) == 0
    return out


def _row(out: Path) -> dict[str, Any]:
    (row,) = ds.dataset(out / "trials", format="parquet").to_table().to_pylist()
    return row


def test_a_run_keeps_its_sampling_network_and_config_loadable_with_weights_only(toy_run: Path) -> None:
    """The file holds the EMA generator alone (no discriminator, no raw generator, no optimiser) and the resolved
    config that train wrote as config.json; torch.load(weights_only=True) reads it."""
    path = toy_run / "models" / "run-0.pt"
    state = torch.load(path, weights_only=True)
    assert state["genbench_model"] == 1 and set(state["family"]) == {"g_ema"}
    assert json.loads(state["config"]) == json.loads((toy_run / "config.json").read_text())
    assert path.stat().st_size < 20_000  # widths 16: ~7 KB


def test_sample_writes_the_scored_samples_as_npy_and_a_scatter_png(toy_run: Path, tmp_path: Path) -> None:
    """With n = eval.n_samples and the run's seed, the samples are those its final evaluation scored."""
    assert main(["sample", str(toy_run), "-n", "300", "--out", str(tmp_path / "s.npy")]) == 0
    points = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert points.shape == (300, 2) and points.dtype == np.float32
    assert np.array_equal(points, np.load(toy_run / "samples" / "run-0.npy"))
    assert main(["sample", str(toy_run), "-n", "50", "--out", str(tmp_path / "s.png")]) == 0
    with Image.open(tmp_path / "s.png") as image:
        assert image.size == (512, 512) and image.mode == "RGB"


def test_evaluate_reproduces_the_rows_quality_and_scores_other_settings(
    toy_run: Path, capsys: pytest.CaptureFixture
) -> None:
    """Same weights, seed and settings: the same numbers, exactly (same device and thread count)."""
    row = _row(toy_run)
    assert main(["evaluate", str(toy_run), "--trial", "run-0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"] == doc["row_settings"] == {"eval.n_samples": 300, "eval.features": "auto"}
    assert doc["scores"]["quality.swd"] == row["quality.swd"] and doc["scores"] == doc["row"]
    assert main(["evaluate", str(toy_run), "--set", "eval.n_samples=600"]) == 0
    printed = capsys.readouterr().out
    assert "Scored with eval.n_samples=600, eval.features=auto; its row's with eval.n_samples=300" in printed
    assert "provenance.n_generated: 600" in printed and "quality.swd" in printed


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["evaluate", "{run}", "--trial", "run-1"], "--trial: no trial 'run-1' (did you mean 'run-0'?)"),
        (["sample", "{run}", "--config", "abc", "-n", "2", "--out", "{tmp}/s.npy"], "--config: no configuration"),
        (["sample", "{run}", "--seed", "3", "-n", "2", "--out", "{tmp}/s.npy"], "--seed: the configuration has no"),
        (["sample", "{run}", "-n", "2", "--out", "{tmp}/s.jpg"], "--out: cannot write"),
        (["sample", "{run}", "-n", "0", "--out", "{tmp}/s.npy"], "-n: expected a number of samples >= 1"),
        (["evaluate", "{run}", "--set", "gan.loss=hinge"], "--set: gan.loss: is not a setting a kept model can"),
        (["evaluate", "{run}", "--set", "eval.n_samples=0"], "--set: eval.n_samples: must be > 0"),
        (["evaluate", "{tmp}"], "study.yaml: not found"),
    ],
)
def test_bad_model_commands_are_one_line_and_exit_2(
    toy_run: Path, tmp_path: Path, argv: list[str], needle: str, capsys: pytest.CaptureFixture
) -> None:
    argv = [a.format(run=toy_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genbench: error:") and len(err.splitlines()) == 1 and needle in err, err
    assert not list(tmp_path.iterdir())


def test_results_without_models_say_why(toy_run: Path, tmp_path: Path) -> None:
    """Saving turned off, and results written before models were kept: each one message, before any data loads."""
    older = tmp_path / "older"
    shutil.copytree(toy_run, older, ignore=shutil.ignore_patterns("models", "dashboards"))
    with pytest.raises(GenbenchError, match="no models/ folder: these results were written before genbench kept"):
        genbench.load_results(older).model()
    off = tmp_path / "off"
    shutil.copytree(older, off)
    record = yaml.safe_load((off / "study.yaml").read_text())
    (off / "study.yaml").write_text(yaml.safe_dump({**record, "save_models": False}))
    with pytest.raises(GenbenchError, match=r"the study kept no models \(results: \{save_models: false\}"):
        genbench.load_results(off).sample(4)


def test_a_kept_model_is_written_and_read_through_the_store_at_a_uri(toy_run: Path, s3: dict[str, str]) -> None:
    """Models go where the rows go: written by ResultsStore.write_config (as the sweep's writer does), read back
    from S3 by the Python API, the same model as the local one."""
    from genbench.results.store import ResultsStore

    uri = "s3://genbench/kept"
    store = ResultsStore(uri)
    store.write_study(yaml.safe_load((toy_run / "study.yaml").read_text()))
    blob = {"ext": "pt", "data": base64.b64encode((toy_run / "models" / "run-0.pt").read_bytes()).decode()}
    row = _row(toy_run)
    row.update({k: row[k].timestamp() for k in ("start_time", "end_time")})  # read back as datetimes
    store.write_trial("run-0", {**row, "model": blob}, [])
    assert store.model_ids() == ["run-0"] and "model" not in store.read("trials").column_names
    remote = genbench.load_results(uri)
    assert torch.equal(remote.sample(64), genbench.load_results(toy_run).sample(64))


def test_kept_parts_leave_out_what_only_training_uses(grid25: Dataset) -> None:
    """A GAN keeps its generator (its EMA copy where it has one), a diffusion model its EMA denoiser where it has
    one, a VAE both networks (its likelihood needs the encoder)."""
    kept = {}
    for family, extra in (("gan", {}), ("gan", {"gan.ema": 0.9}), ("diffusion", {"diffusion.ema": 0.9}), ("vae", {})):
        cfg = from_flat({"family": family, "data.name": "grid25", **extra})
        kept[f"{family}{extra}"] = sorted(FAMILIES.get(family).build(cfg, grid25).parts().kept())
    assert kept == {
        "gan{}": ["g"],
        "gan{'gan.ema': 0.9}": ["g_ema"],
        "diffusion{'diffusion.ema': 0.9}": ["ema_net"],
        "vae{}": ["decoder", "encoder"],
    }


def test_an_evaluation_draws_from_its_own_seeded_stream(make_gan: Any, grid25: Dataset) -> None:
    """A seeded evaluation gives the same scores each time and leaves training's random stream where it was."""
    family = make_gan()
    evaluator = Evaluator(grid25, 200, seed=3)
    torch.manual_seed(11)
    swd = evaluator(family)["swd"]
    after = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(torch.rand(4), after)  # the evaluation drew nothing from training's stream
    assert evaluator(family)["swd"] == swd and Evaluator(grid25, 200, seed=4)(family)["swd"] != swd


@pytest.mark.ray
def test_every_run_of_the_image_study_keeps_its_model_and_scores_the_same_again(
    image_study_results: Path, tmp_path: Path
) -> None:
    """The shared VAE/flow dry run (Ray Tune, one seed each): a model per trained run, and the best configuration's
    scored again with its own settings gives its row's quality exactly; samples as a PNG grid and an array."""
    results = genbench.load_results(image_study_results)
    trained = results.trials[results.trials["status"] != "failed"]
    assert results.store.model_ids() == sorted(trained["trial_id"]) and results.study["save_models"] is True
    best = results.best
    assert best is not None
    scores, row = results.evaluate(), best.trials.iloc[0]
    quality = [k for k in scores if k.startswith("quality.")]
    assert "quality.fd" in quality and all(scores[k] == row[k] for k in quality), (scores, row[quality])
    assert main(["sample", str(image_study_results), "-n", "10", "--out", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as image:  # 4 x 3 tiles of 8x8 pixels enlarged 4x, 1-pixel gaps
        assert image.size == (4 * 33 + 1, 3 * 33 + 1) and image.mode == "RGB"
    assert main(["sample", str(image_study_results), "-n", "10", "--out", str(tmp_path / "x.npy")]) == 0
    images = np.load(tmp_path / "x.npy")
    assert images.shape == (10, 3, 8, 8) and images.min() >= 0 and images.max() <= 1
