"""Honest scores on user images: the test split of a 600-image folder, the learned feature extractor (trained once,
cached, deterministic) and the warnings for small reference sets and degenerate scores (summary, sweep end, page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from genbench.config import DataConfig
from genbench.data import Dataset, load_dataset
from genbench.data.files import held_out
from genbench.metrics import learned
from genbench.metrics.extractors import Extractor, extractor_for
from genbench.metrics.features import frechet_distance, precision_recall
from genbench.metrics.score_warnings import score_warnings


def _write_patches(folder: Path, n: int = 600, side: int = 16) -> Path:
    """n RGB side x side PNGs: area-downsampled patches of the two photos scikit-learn ships (offline)."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two (427, 640, 3) uint8 photos
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(n):
        photo = photos[i % 2]
        y, x = rng.integers(0, photo.shape[0] - 3 * side), rng.integers(0, photo.shape[1] - 3 * side)
        crop = photo[y : y + 3 * side, x : x + 3 * side].reshape(side, 3, side, 3, 3).mean(axis=(1, 3))
        Image.fromarray(crop.round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="session")
def patches(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset(DataConfig(name="files", path=str(_write_patches(tmp_path_factory.mktemp("d") / "photos"))))


@pytest.fixture(scope="session")
def learned_features(patches: Dataset) -> Extractor:
    """eval.features=auto on the folder, without Inception weights: the learned extractor, trained here once."""
    return extractor_for(patches)


def test_a_600_image_folder_holds_out_150_reference_images(patches: Dataset) -> None:
    assert patches.shape == (3, 16, 16) and (len(patches.train), len(patches.test)) == (450, 150)
    assert [held_out(n, 0.1, images=True) for n in (6000, 1500, 600, 200, 10)] == [600, 150, 150, 50, 2]
    assert held_out(600, 0.3, images=True) == 180  # a larger share asked for is kept
    assert held_out(800, 0.1, images=False) == 80  # vectors (toy and SWD data) keep the plain fraction
    assert held_out(2, 0.9, images=False) == 1  # a training split is always left


def test_the_learned_extractor_is_auto_on_user_images_trained_once_and_cached(
    patches: Dataset, learned_features: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert learned_features.name.startswith(
        "learned-contrastive-cnn v1 32-d (SimCLR on this data's 450 training images at 16x16, 300 steps, seed 0"
    )
    assert learned_features.dim == 32 and learned_features.features(patches.test).shape == (150, 32)
    cached = list(learned.cache_dir().glob(f"contrastive-{learned._key(patches.train)}.pt"))
    assert len(cached) == 1

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("trained again although the network is cached")

    monkeypatch.setattr(learned, "train_contrastive", refuse)
    again = extractor_for(patches, "learned")  # loaded from the cache file
    assert again.name == learned_features.name
    assert torch.equal(again.features(patches.test), learned_features.features(patches.test))


def test_learned_training_is_deterministic(patches: Dataset) -> None:
    small = patches.train[:96]
    first, second = (learned.train_contrastive(small, steps=5).state_dict() for _ in range(2))
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = learned.train_contrastive(small, steps=5, seed=1).state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_learned_features_tell_real_images_from_blurred_noised_and_uniform_noise(
    patches: Dataset, learned_features: Extractor
) -> None:
    """Real training images are closer to the test split than blurred or noised ones (raw pixels put a 3x3 blur
    closer than real images), and uniform noise is far and outside the real k-NN balls."""
    gen = torch.Generator().manual_seed(0)
    feats, real = learned_features.features, learned_features.features(patches.test)
    noised = (patches.train + 0.1 * torch.randn(patches.train.shape, generator=gen)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(patches.train, (1,) * 4, mode="replicate"), 3, 1)
    uniform = torch.rand(patches.train.shape, generator=gen)
    fd = {
        name: frechet_distance(real, feats(x))
        for name, x in {"real": patches.train, "blurred": blurred, "noised": noised, "uniform": uniform}.items()
    }
    assert fd["real"] < fd["blurred"] and fd["real"] < fd["noised"] < fd["uniform"], fd
    precision, recall = precision_recall(real, feats(patches.train))
    assert precision > 0.8 and recall > 0.8
    assert precision_recall(real, feats(uniform))[0] < 0.2


def _rows(extractor: str, dim: int, n_ref: int, precision: list[float], recall: list[float]) -> pd.DataFrame:
    n = len(precision)
    return pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(n)],
            "status": "completed",
            "quality.fd": np.linspace(1, 2, n),
            "quality.precision": precision,
            "quality.recall": recall,
            "provenance.extractor": extractor,
            "provenance.feature_dim": dim,
            "provenance.n_reference": n_ref,
            "provenance.n_generated": 2500,
        }
    )


def test_warnings_for_a_small_reference_set_and_degenerate_scores() -> None:
    pixels = score_warnings(_rows("pixels 16x16 (no learned features)", 768, 60, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]))
    assert len(pixels) == 3, pixels  # reference <= dim; precision 1 / recall 0; the two constant
    assert "reference (test split) set of 60 images is no larger than the feature dimension 768" in pixels[0]
    assert "rank at most 59" in pixels[0] and "data.test_fraction" in pixels[0]
    assert "eval.features=learned" in pixels[0]
    assert pixels[1].startswith("Every scored run (3) has quality.precision 1 and quality.recall 0")
    assert pixels[2] == (
        "Identical in every one of the 3 scored runs, so they do not tell the runs apart: "
        "quality.precision 1, quality.recall 0."
    )
    noisy = score_warnings(_rows("learned-contrastive-cnn v1 32-d", 32, 100, [0.5, 0.6], [0.4, 0.3]))
    assert len(noisy) == 1 and "under 4x the feature dimension 32" in noisy[0]
    assert "eval.features=learned" not in noisy[0]  # already the learned features
    few_samples = score_warnings(
        _rows("learned", 32, 150, [0.5, 0.6], [0.4, 0.3]).assign(**{"provenance.n_generated": 40})
    )
    assert len(few_samples) == 1 and "generated set of 40 images" in few_samples[0]
    assert score_warnings(_rows("learned", 32, 150, [0.5, 0.6], [0.4, 0.3])) == []
    one_run = _rows("learned", 32, 150, [0.5], [0.4])
    assert score_warnings(one_run) == []  # one run: nothing to be identical with
    toy = pd.DataFrame(
        {
            "quality.modes": [25.0, 24.0],
            "provenance.extractor": "none (data space)",
            "provenance.feature_dim": [None, None],
            "provenance.n_reference": 1000,
            "provenance.n_generated": 2500,
        }
    )
    assert score_warnings(toy) == []


STUDY = """
study: photos
family: vae
data: {name: files, path: photos}
objectives: [{metric: quality.fd, mode: min}]
budget: {trials: 3, steps: 20, eval_every: 10}
dry_run: {trials: 3, steps: 20, eval_every: 10}
search: {algorithm: random, seed: 0}
space:
  optim.lr: {float: [1.0e-4, 1.0e-2], log: true}
"""


def test_summary_sweep_end_and_metrics_page_carry_the_warnings(tmp_path: Path) -> None:
    from genbench.dashboards.site import write_dashboards
    from genbench.results import ResultsStore
    from genbench.sweep.spec import load_study
    from genbench.sweep.summary import describe, summarise

    (tmp_path / "photos").mkdir()
    (tmp_path / "study.yaml").write_text(STUDY)
    study = load_study(tmp_path / "study.yaml")
    store = ResultsStore(str(tmp_path / "out"))
    store.write_study({"study": "photos", "family": "vae", "objectives": [{"metric": "quality.fd", "mode": "min"}]})
    rows = _rows("pixels 16x16 (no learned features)", 768, 60, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    for row in rows.assign(family="vae", seed=0, steps=20, **{"cost.device_s": 1.0}).to_dict("records"):
        store.write_trial(row["trial_id"], row, [])
    summary = summarise(study, study.dry_run, store, None)
    saved = yaml.safe_load((tmp_path / "out" / "summary.yaml").read_text())
    assert saved["warnings"] == summary["warnings"] == score_warnings(store.read("trials").to_pandas())
    assert len(saved["warnings"]) == 3
    lines = describe(summary, "1 s")
    assert [line for line in lines if line.startswith("Warning: ")] == [f"Warning: {w}" for w in saved["warnings"]]
    page = (Path(write_dashboards(str(tmp_path / "out"))).parent / "metrics.html").read_text()
    assert "Warnings about these scores" in page and "no larger than the feature dimension 768" in page
    assert "Warnings about these scores" not in (tmp_path / "out" / "dashboards" / "quality.html").read_text()
