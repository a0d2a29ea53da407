"""Sample files of a trial's final model: encoded in the run, written before its row, read back by the dashboards."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.dashboards.figures import SampleShot, sample_grids
from genbench.results.samples import GRID_MAX, POINTS_MAX, TILE_MIN_PX, decode, encode, read_points
from genbench.results.store import ResultsStore
from genbench.train.run import run


def test_images_become_one_png_grid_enlarged_pixel_for_pixel() -> None:
    images = torch.rand(100, 1, 8, 8)
    ext, data = decode(encode(images, is_image=True))
    grid = np.asarray(Image.open(io.BytesIO(data)))
    tile = 8 * (TILE_MIN_PX // 8)  # 32 px per 8x8 digit
    assert ext == "png" and grid.ndim == 2  # grey
    assert grid.shape == (8 * (tile + 1) + 1, 8 * (tile + 1) + 1)  # GRID_MAX = 64 of the 100, 8 x 8, 1 px gaps
    first = grid[1 : 1 + tile, 1 : 1 + tile].astype(float) / 255
    expected = images[0, 0].repeat_interleave(4, 0).repeat_interleave(4, 1).numpy()
    assert np.abs(first - expected).max() <= 0.5 / 255 + 1e-6
    assert GRID_MAX == 64


def test_rgb_images_stay_rgb() -> None:
    _, data = decode(encode(torch.rand(5, 3, 32, 32), is_image=True))
    grid = np.asarray(Image.open(io.BytesIO(data)))
    assert grid.shape == (2 * 33 + 1, 3 * 33 + 1, 3)  # 5 images: 2 rows of 3 columns


def test_points_round_trip_without_non_finite_rows() -> None:
    points = torch.randn(1500, 2)
    points[3] = math.nan
    ext, data = decode(encode(points, is_image=False))
    back = read_points(data)
    assert ext == "npy" and back.shape == (POINTS_MAX, 2)
    np.testing.assert_array_equal(back[:3], points[:3].numpy())
    np.testing.assert_array_equal(back[3], points[4].numpy())  # the NaN row is dropped
    assert encode(torch.full((10, 2), math.nan), is_image=False) is None  # a diverged model: no file


def test_store_writes_samples_before_the_row_and_reads_them_back(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "r"))
    blob = encode(torch.randn(20, 2), is_image=False)
    rows = [
        {"trial_id": "c1_s0", "seed": 0, "status": "completed", "samples": blob},
        {"trial_id": "c1_s1", "seed": 1, "status": "diverged"},
    ]
    store.write_config("c1", rows, [])
    assert rows[0]["samples"] is blob  # the caller's rows are not changed
    assert "samples" not in store.read("trials").column_names  # a file, not a column
    ext, data = store.read_samples("c1_s0")
    assert ext == "npy" and read_points(data).shape == (20, 2)
    assert store.read_samples("c1_s1") is None
    assert not list((tmp_path / "r" / "samples").glob(".tmp-*"))


@pytest.mark.parametrize(
    "family,data,ext", [("gan", "ring8", "npy"), ("vae", "digits", "png"), ("flow", "grid25", "npy")]
)
def test_a_run_carries_its_final_samples_and_sampler(family: str, data: str, ext: str) -> None:
    row = run({"family": family, "data.name": data, "train.steps": 4, "eval.every": 4, "eval.n_samples": 64})
    assert row["status"] == "completed" and row["samples"]["ext"] == ext
    assert row["provenance.sampler"] and row["cost.sample_nfe"] >= 1


def test_diffusion_names_its_sampler_and_steps() -> None:
    row = run(
        {
            "family": "diffusion",
            "data.name": "ring8",
            "train.steps": 2,
            "eval.every": 2,
            "eval.n_samples": 16,
            "diffusion.sampler": "ddim",
            "diffusion.ddim_steps": 7,
        }
    )
    assert row["provenance.sampler"] == "ddim (7 steps)" and row["cost.sample_nfe"] == 7


def test_grid_figure_has_an_image_per_png_and_points_per_npy() -> None:
    png = decode(encode(torch.rand(4, 1, 8, 8), is_image=True))
    npy = decode(encode(torch.randn(30, 2), is_image=False))
    fig = sample_grids(
        [
            SampleShot("vae", "best", "t1", "fd = 3", *png),
            SampleShot("gan", "best", "t2", "modes = 8", *npy),
            SampleShot("gan", "median", "t3", "modes = 5", *npy),
        ],
        "Samples",
    )
    assert [t.type for t in fig.data] == ["image", "scatter", "scatter"]
    assert fig.data[0].source.startswith("data:image/png;base64,") and len(fig.data[1].x) == 30
    assert [a.text for a in fig.layout.annotations] == [
        "vae: best (t1, fd = 3)",
        "gan: best (t2, modes = 8)",
        "gan: median (t3, modes = 5)",
    ]
    assert fig.layout.xaxis3.title.text == "x1 (data units)"
