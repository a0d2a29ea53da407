"""User data from files: a folder of images, a .npy/.npz array or a Parquet file of encoded images."""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from genbench.data.base import Dataset
from genbench.data.names import DATASETS
from genbench.errors import GenbenchError
from genbench.sections import DataConfig

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SPLIT_SEED = 0
# Images are scored in a feature space against the test split (FD fits a covariance, precision/recall build k-NN
# balls): a reference set of at least MIN_TEST_IMAGES (over 4x the learned features' 32 dimensions, see
# genbench.metrics.warnings), taking at most MAX_TEST_SHARE of a small data set from its training split.
MIN_TEST_IMAGES, MAX_TEST_SHARE = 150, 0.25
MAX_DATA_BYTES = 8 * 2**30  # what an array file or Parquet file may decompress to: data are held in memory (as
# float32, four times uint8) by every trial, and a small archive can claim terabytes (a decompression bomb)
TOO_BIG_FIX = "genbench holds data in memory: use a subset of it"


def _fail(path: str | Path, problem: str, fix: str) -> GenbenchError:
    return GenbenchError(f"{path}: {problem} ({fix})")


def _decode(source: object, name: str, channels: int) -> np.ndarray:
    """One image (bytes or a path) -> (H, W, C) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _open_image(source) as img:
            mode = {1: "L", 3: "RGB"}.get(channels, "RGB" if img.mode not in ("L", "1", "I;16") else "L")
            return np.array(img.convert(mode)).reshape(img.size[1], img.size[0], -1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _fail(
            name,
            f"refused: {exc}",
            "a decompression bomb, or an image far larger than a data set's; remove or shrink it",
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise _fail(name, f"not a readable image: {exc}", "remove or replace the file") from None


def _open_image(source: object) -> Any:
    """Image.open, with Pillow's warning for a header that claims more than Image.MAX_IMAGE_PIXELS pixels raised
    as an error: Pillow only refuses twice that, and would decode the rest (gigabytes from a few bytes)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _stack(images: list[np.ndarray], names: list[str], cfg: DataConfig) -> np.ndarray:
    """(N, H, W, C) uint8; sizes must agree unless data.image_size resizes them."""
    first = images[0].shape
    for img, name in zip(images, names):
        if img.shape != first and not cfg.image_size:
            raise _fail(
                name,
                f"size {img.shape[:2]} differs from {first[:2]} of {names[0]}",
                "set data.image_size to resize every image",
            )
    if cfg.image_size:
        return np.stack([_resize_hwc(img, cfg.image_size) for img in images])
    return np.stack(images)


def _resize_hwc(img: np.ndarray, size: int) -> np.ndarray:
    t = torch.as_tensor(img, dtype=torch.float32).permute(2, 0, 1)[None]  # (1, C, H, W)
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _folder(path: Path, cfg: DataConfig) -> tuple[np.ndarray, None]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise _fail(path, "no image files (png, jpg, bmp, gif, webp) in this folder", "check data.path")
    images = [_decode(str(f), str(f), cfg.channels) for f in files]
    return _stack(images, [str(f) for f in files], cfg), None


def _array_bytes(stream: BinaryIO) -> int:
    """The bytes an .npy stream's header says its array holds (what numpy allocates before reading any data)."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(stream)
    return math.prod(shape) * dtype.itemsize


def _check_array_size(path: Path) -> None:
    """Refuse an .npy or .npz whose arrays would take more than MAX_DATA_BYTES once loaded, read from their headers
    before numpy allocates them: an .npz of zeros compresses a thousandfold, and a header may claim any shape."""
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as f:
                claimed = _array_bytes(f)
        else:
            claimed = 0
            with zipfile.ZipFile(path) as archive:
                for member in (m for m in archive.namelist() if m.endswith(".npy")):
                    with archive.open(member) as f:
                        claimed += _array_bytes(f)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise _fail(path, f"not a readable numpy file: {exc}", "save it with numpy.save / numpy.savez") from None
    if claimed > MAX_DATA_BYTES:
        raise _fail(
            path,
            f"its arrays would take {claimed / 2**30:,.1f} GiB in memory, more than genbench loads "
            f"({MAX_DATA_BYTES / 2**30:.3g} GiB)",
            TOO_BIG_FIX,
        )


def _array(path: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    _check_array_size(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise _fail(path, f"not a readable numpy file: {exc}", "save it with numpy.save / numpy.savez") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    keys = list(loaded.keys())
    x_key = next((k for k in ("x", "images", "data", "arr_0") if k in keys), keys[0] if keys else None)
    if x_key is None:
        raise _fail(path, "the .npz holds no array", "store the images as x=...")
    y_key = next((k for k in ("y", "labels") if k in keys), None)
    return loaded[x_key], (loaded[y_key] if y_key else None)


def _parquet(path: Path, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            meta = parquet.metadata
        columns = meta.schema.to_arrow_schema().names
        if "image" not in columns:
            raise _fail(
                path,
                f"no 'image' column (columns: {', '.join(columns)})",
                "store encoded images (PNG/JPEG bytes) in a column named 'image'",
            )
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))  # uncompressed
        if size > MAX_DATA_BYTES:  # checked before read_table decompresses it all
            raise _fail(
                path,
                f"decompresses to {size / 2**30:,.1f} GiB, more than genbench loads ({MAX_DATA_BYTES / 2**30:.3g} GiB)",
                TOO_BIG_FIX,
            )
        table = pq.read_table(path, columns=[c for c in ("image", "label") if c in columns])
    except (pa.ArrowException, OSError) as exc:
        raise _fail(path, f"not a readable Parquet file: {exc}", "write it with pyarrow or pandas.to_parquet") from None
    cells = table.column("image").to_pylist()
    blobs = [c.get("bytes") if isinstance(c, dict) else c for c in cells]  # Hugging Face style {bytes, path}
    if not blobs or not all(isinstance(b, bytes) for b in blobs):
        raise _fail(path, "column 'image' must hold encoded image bytes", "store PNG/JPEG bytes")
    images = [_decode(b, f"{path} row {i}", cfg.channels) for i, b in enumerate(blobs)]
    labels = np.asarray(table.column("label").to_pylist()) if "label" in table.column_names else None
    return _stack(images, [f"{path} row {i}" for i in range(len(images))], cfg), labels


def to_tensor(array: np.ndarray, path: str, cfg: DataConfig) -> tuple[torch.Tensor, int | None]:
    """Vectors (N, D) stay as they are; images become (N, C, H, W) float in [0, 1] with their level count."""
    if array.ndim < 2 or len(array) == 0:
        raise _fail(
            path,
            f"expected (N, D) vectors or (N, H, W[, C]) images, got shape {array.shape}",
            "save one example per row",
        )
    if not np.issubdtype(array.dtype, np.number) or (
        np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all()
    ):
        raise _fail(path, "the data hold NaN, infinite or non-numeric values", "clean the data first")
    if array.ndim == 2:
        return torch.as_tensor(array, dtype=torch.float32), None
    if array.ndim == 3:
        array = array[..., None]  # (N, H, W) -> (N, H, W, 1)
    if array.ndim != 4:
        raise _fail(path, f"expected (N, H, W[, C]) images, got shape {array.shape}", "save one image per row")
    if array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    return _images_tensor(array, path, cfg)


def _images_tensor(array: np.ndarray, path: str, cfg: DataConfig) -> tuple[torch.Tensor, int | None]:
    if array.dtype == np.uint8:
        scaled, levels = array.astype(np.float32) / 255.0, 256
    elif array.min() >= 0 and array.max() <= 1:
        scaled, levels = array.astype(np.float32), None
    else:
        raise _fail(
            path,
            f"image values must be uint8 or floats in [0, 1], got [{array.min()}, {array.max()}]",
            "rescale the images",
        )
    t = torch.as_tensor(scaled).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    if cfg.channels == 1 and t.shape[1] == 3:
        t = t.mean(dim=1, keepdim=True)
        levels = None  # the grey mean of 8-bit RGB leaves the 256-level grid
    if cfg.image_size and t.shape[-1] != cfg.image_size:
        t = torch.nn.functional.interpolate(t, size=(cfg.image_size,) * 2, mode="bilinear", antialias=True)
        levels = None  # resampled values leave the original grid
    return t.clamp(0, 1), levels


@DATASETS.register(
    "files",
    "your data: data.path = a folder of images, a .npy/.npz array or a Parquet file "
    "with an 'image' column; data.image_size, data.channels",
)
def files(cfg: DataConfig) -> Dataset:
    path = Path(cfg.path)
    if not path.exists():
        raise _fail(path, "does not exist", "check data.path")
    if path.is_dir():
        array, labels = _folder(path, cfg)
    elif path.suffix in (".npy", ".npz"):
        array, labels = _array(path, cfg)
    elif path.suffix == ".parquet":
        array, labels = _parquet(path, cfg)
    else:
        raise _fail(path, "unknown data format", "give a folder of images, a .npy/.npz or a .parquet file")
    x, levels = to_tensor(np.asarray(array), str(path), cfg)
    return _split(path.name, x, labels, levels, cfg)


def held_out(n: int, test_fraction: float, images: bool) -> int:
    """Examples held out of n: test_fraction of them; for images at least MIN_TEST_IMAGES, but never more than
    MAX_TEST_SHARE of n through that floor (600 images: 150, not 60; 6,000: 600; 200: 50); always 1 to n - 1."""
    by_fraction = int(round(n * test_fraction))
    floor = min(MIN_TEST_IMAGES, int(n * MAX_TEST_SHARE)) if images else 0
    return min(max(1, by_fraction, floor), n - 1)


def _split(name: str, x: torch.Tensor, labels: np.ndarray | None, levels: int | None, cfg: DataConfig) -> Dataset:
    if len(x) < 2:
        raise _fail(cfg.path, f"only {len(x)} example(s)", "a train and a test split need at least 2")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = held_out(len(x), cfg.test_fraction, images=x.dim() == 4)
    test, train = order[:n_test], order[n_test:]
    y = torch.as_tensor(labels, dtype=torch.int64) if labels is not None else None
    return Dataset(
        name,
        x[train],
        x[test],
        levels=levels,
        train_labels=None if y is None else y[train],
        test_labels=None if y is None else y[test],
        num_classes=int(y.max()) + 1 if y is not None else 0,
    )
