"""Image data: digits and stacked digits, and user data from folders, arrays and Parquet, with clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from genbench.config import DataConfig
from genbench.data import load_dataset
from genbench.errors import GenbenchError


def _load(**kwargs: object):
    return load_dataset(DataConfig(**kwargs))


def test_digits_fixed_split_17_levels_10_classes() -> None:
    data = _load(name="digits")
    assert data.shape == (1, 8, 8) and data.is_image and data.levels == 17 and data.num_classes == 10
    assert len(data.train) + len(data.test) == 1797 and len(data.test) == 359
    values = torch.cat([data.train, data.test]).unique()
    assert torch.allclose(values * 16, (values * 16).round()) and values.min() == 0 and values.max() == 1
    again = _load(name="digits")
    assert torch.equal(data.train, again.train) and torch.equal(data.test_labels, again.test_labels)
    assert set(data.train_labels.tolist()) == set(range(10))


def test_stacked_digits_channels_are_digits_and_labels_name_all_three() -> None:
    digits = _load(name="digits")
    data = _load(name="stacked_digits", n_train=3000, n_test=500)
    assert data.shape == (3, 8, 8) and data.num_classes == 1000 and len(data.train) == 3000
    assert len(data.train_labels.unique()) > 900  # 3,000 draws from 1,000 classes reach most of them
    train_digits = {tuple(img.flatten().tolist()) for img in digits.train}
    assert all(tuple(data.train[0, c].flatten().tolist()) in train_digits for c in range(3))
    test_digits = {tuple(img.flatten().tolist()) for img in digits.test}
    assert all(tuple(data.test[i, 0].flatten().tolist()) in test_digits for i in range(20))


def _png(path: Path, size: tuple[int, int], mode: str = "L", value: int = 128) -> None:
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_folder_of_images_and_resize(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / f"{i}.png", (16, 16), value=i * 20)
    data = _load(name="files", path=str(tmp_path))
    assert data.shape == (1, 16, 16) and len(data.train) == 8 and len(data.test) == 2 and data.levels == 256
    small = _load(name="files", path=str(tmp_path), image_size=8)
    assert small.shape == (1, 8, 8)


def test_rgb_folder_to_grey_and_mixed_sizes_error(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", (8, 8), "RGB")
    _png(tmp_path / "b.png", (8, 8), "RGB")
    assert _load(name="files", path=str(tmp_path)).shape == (3, 8, 8)
    assert _load(name="files", path=str(tmp_path), channels=1).shape == (1, 8, 8)
    _png(tmp_path / "c.png", (10, 8), "RGB")
    with pytest.raises(GenbenchError, match=r"c\.png: size .* differs .*data\.image_size"):
        _load(name="files", path=str(tmp_path))
    assert _load(name="files", path=str(tmp_path), image_size=8).shape == (3, 8, 8)


def test_arrays_npy_npz_with_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (20, 8, 8), dtype=np.uint8))
    assert _load(name="files", path=str(tmp_path / "x.npy")).shape == (1, 8, 8)
    np.savez(tmp_path / "xy.npz", x=rng.random((20, 3, 8, 8), dtype=np.float32), y=np.arange(20) % 4)
    data = _load(name="files", path=str(tmp_path / "xy.npz"))
    assert data.shape == (3, 8, 8) and data.levels is None and data.num_classes == 4
    np.save(tmp_path / "v.npy", rng.normal(size=(50, 2)))
    assert _load(name="files", path=str(tmp_path / "v.npy")).shape == (2,)


def test_parquet_of_encoded_images(tmp_path: Path) -> None:
    blobs = []
    for i in range(6):
        buf = io.BytesIO()
        Image.new("L", (8, 8), i * 40).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    pq.write_table(pa.table({"image": blobs, "label": list(range(6))}), tmp_path / "d.parquet")
    data = _load(name="files", path=str(tmp_path / "d.parquet"))
    assert data.shape == (1, 8, 8) and data.num_classes == 6 and len(data.train) + len(data.test) == 6


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda p: p.mkdir(), "no image files"),
        (lambda p: np.save(p, np.array([1.0, np.nan, 2.0]).reshape(3, 1)), "NaN"),
        (lambda p: np.save(p, np.zeros(5)), "got shape (5,)"),
        (lambda p: np.save(p, np.full((4, 8, 8), 3.5)), "uint8 or floats in [0, 1]"),
        (lambda p: pq.write_table(pa.table({"pixels": [1, 2]}), p), "no 'image' column"),
        (lambda p: p.write_text("not an image"), "unknown data format"),
    ],
)
def test_bad_data_names_the_file(tmp_path: Path, make, needle: str) -> None:
    suffix = {"no image files": "", "no 'image' column": ".parquet", "unknown data format": ".txt"}.get(needle, ".npy")
    path = tmp_path / f"bad{suffix}"
    make(path)
    with pytest.raises(GenbenchError) as info:
        _load(name="files", path=str(path))
    assert needle in str(info.value) and str(path) in str(info.value)


def test_files_needs_a_path() -> None:
    with pytest.raises(GenbenchError, match="data.path"):
        DataConfig(name="files")
