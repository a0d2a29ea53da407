"""Standard image data sets: MNIST, Fashion-MNIST, CIFAR-10 downloaded once and verified; CelebA from a local copy."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import pickle
import struct
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from genbench.atomic import building, replace_durably
from genbench.data.base import Dataset
from genbench.data.files import IMAGE_SUFFIXES, to_tensor
from genbench.data.names import DATASETS
from genbench.errors import ConfigError, GenbenchError
from genbench.sections import DataConfig

SUBSET_SEED = 0  # data.n_train / data.n_test below a split's size keep the same fixed-seed subset in every run
TIMEOUT_S = 60  # a stalled server fails the download instead of hanging a trial forever
CHUNK = 1 << 20
CELEBA_SIZE = 64  # the usual CelebA benchmark resolution when data.image_size is 0
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


@dataclass(frozen=True)
class Remote:
    """Where a data set's files live and the MD5 of each (torchvision's published resource checksums)."""

    base_url: str
    md5: dict[str, str]  # file name -> md5 hex digest


IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR10_FILE = "cifar-10-python.tar.gz"

# The mirrors and checksums of torchvision.datasets.MNIST / FashionMNIST / CIFAR10 (torchvision itself cannot be
# installed beside the pinned CPU torch, so genbench reads the same files with numpy and pickle).
REMOTES: dict[str, Remote] = {
    "mnist": Remote(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        dict(
            zip(
                IDX_FILES,
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
            )
        ),
    ),
    "fashion_mnist": Remote(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        dict(
            zip(
                IDX_FILES,
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
            )
        ),
    ),
    "cifar10": Remote("https://www.cs.toronto.edu/~kriz/", {CIFAR10_FILE: "c58f30108f718f92721af3b95e74349a"}),
}


def data_dir() -> Path:
    """The download cache: $GENBENCH_DATA, or ~/.cache/genbench/data."""
    return Path(os.environ.get("GENBENCH_DATA") or Path.home() / ".cache" / "genbench" / "data")


def source_url(name: str, filename: str) -> str:
    """The file's URL; $GENBENCH_DATA_MIRROR replaces every host with one laid out like the cache (NAME/FILE)."""
    mirror = os.environ.get("GENBENCH_DATA_MIRROR", "").rstrip("/")
    return f"{mirror}/{name}/{filename}" if mirror else REMOTES[name].base_url + filename


def _download_error(url: str, path: Path, problem: str) -> GenbenchError:
    return GenbenchError(
        f"{url}: {problem}; not saved to {path} (put the file there by hand, point GENBENCH_DATA "
        f"at a folder holding {path.parent.name}/{path.name}, or GENBENCH_DATA_MIRROR at a "
        "reachable mirror)"
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


LOG_EVERY_S = 10.0  # between whole progress lines where stderr is not a terminal (a log file, a pipe, Ray's logs)


class _Progress:
    """'label: done / total' on stderr (or `out`): on a terminal rewritten in place with a carriage return at most
    twice a second; elsewhere a whole line at most every LOG_EVERY_S seconds, so that a log holds no carriage
    returns and stays short."""

    def __init__(self, label: str, total: int | None, unit: str = "MB", out: TextIO | None = None) -> None:
        self.label, self.total, self.unit, self.last = label, total, unit, 0.0
        self.out = out or sys.stderr
        self.terminal = self.out.isatty()
        self.every_s = 0.5 if self.terminal else LOG_EVERY_S

    def _fmt(self, n: int) -> str:
        return f"{n / 1e6:.1f}" if self.unit == "MB" else str(n)

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every_s:
            return
        self.last = now
        of = f" / {self._fmt(self.total)}" if self.total else ""
        text = f"{self.label}: {self._fmt(done)}{of} {self.unit}"
        if self.terminal:
            print(f"\r{text}", end="\n" if final else "", file=self.out, flush=True)
        else:
            print(text, file=self.out, flush=True)


def _stream(url: str, tmp: Path) -> str:
    """Copy url to tmp with progress; the MD5 of what arrived."""
    digest, done = hashlib.md5(usedforsecurity=False), 0
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, tmp.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        progress = _Progress(f"downloading {url}", total)
        try:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                progress(done)
        finally:
            progress(done, final=True)  # ends the line, so that an error starts on a line of its own
    if total is not None and done != total:
        raise http.client.IncompleteRead(b"", total - done)
    return digest.hexdigest()


def download(url: str, path: Path, md5: str) -> None:
    """url -> path through a temporary file beside it, renamed only once its MD5 matches (never a partial file)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")  # unique: a killed download's is removed by fetch
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        got = _stream(url, tmp)
        if got != md5:
            raise _download_error(url, path, f"checksum mismatch (md5 {got}, expected {md5})")
        replace_durably(tmp, path)  # after a crash: no file, or the whole verified one
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        why = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
        raise _download_error(url, path, f"download failed: {why}") from None
    finally:
        tmp.unlink(missing_ok=True)
    print(f"saved {path}", file=sys.stderr, flush=True)


def _download_once(url: str, path: Path, md5: str) -> bool:
    """Download `path` unless another process did while this one waited for the lock; True when this one did.

    Trials starting together on a node would each fetch the same archive (CIFAR-10's 170 MB once per trial).
    """
    try:
        with building(path, f"downloading {path.name}"):
            if path.exists():
                return False
            for stale in path.parent.glob(f".{path.name}.*.part"):  # a killed download's: only the holder writes one
                stale.unlink(missing_ok=True)
            download(url, path, md5)  # its own OSErrors come out as one GenbenchError
            return True
    except OSError as exc:  # the lock beside the file: a cache folder that cannot be written
        raise _download_error(url, path, f"cannot write there: {exc}") from None


def fetch(name: str, filename: str) -> Path:
    """The verified local copy of one file of a data set, downloaded on first use."""
    md5 = REMOTES[name].md5[filename]
    path = data_dir() / name / filename
    if not path.exists() and _download_once(source_url(name, filename), path, md5):
        return path
    if _md5(path) != md5:  # a file put there by hand, by another process or an older tool is checked like a download
        raise GenbenchError(
            f"{path}: checksum mismatch (expected md5 {md5}) (delete it to download it again, "
            "or replace it with the original file)"
        )
    return path


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes (MNIST's format) -> uint8 array of its stored shape."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise GenbenchError(f"{path}: not a readable gzip file: {exc} (delete it to download it again)") from None
    # magic number: two zero bytes, type 0x08 (unsigned byte), then the number of dimensions
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise GenbenchError(
            f"{path}: not an IDX file of unsigned bytes (bad magic number) (delete it to download it again)"
        )
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise GenbenchError(
            f"{path}: IDX header says {dims} but holds {data.size} values (delete it to download it again)"
        )
    return data.reshape(dims)


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, train_labels, test, test_labels) from the python-pickle archive; images (N, 32, 32, 3) uint8."""
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches: dict[str, dict] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:  # one pass in archive order: a gzip stream cannot seek back cheaply
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in wanted:
                # pickle can run code: only an archive whose MD5 matched (fetch) reaches this line
                batches[base] = pickle.load(tar.extractfile(member), encoding="bytes")
    missing = [b for b in wanted if b not in batches]
    if missing:
        raise GenbenchError(f"{path}: no {', '.join(missing)} in the archive (delete it to download it again)")

    def images(batch: dict) -> np.ndarray:
        flat = np.asarray(batch.get(b"data", batch.get("data")), dtype=np.uint8)  # (N, 3072): R, G, B planes
        return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)

    def labels(batch: dict) -> np.ndarray:
        return np.asarray(batch.get(b"labels", batch.get("labels")), dtype=np.int64)

    train = [batches[b] for b in wanted[:5]]
    return (
        np.concatenate([images(b) for b in train]),
        np.concatenate([labels(b) for b in train]),
        images(batches["test_batch"]),
        labels(batches["test_batch"]),
    )


def _subset(n_total: int, n: int, seed: int) -> np.ndarray:
    """All indices when n covers the split; else a fixed-seed subset of n, in the split's own order."""
    if n >= n_total:
        return np.arange(n_total)
    order = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]
    return order.sort().values.numpy()


def _images(array: np.ndarray, source: str, cfg: DataConfig) -> tuple[torch.Tensor, int | None]:
    """uint8 (N, H, W[, C]) -> float (N, C, H, W) in [0, 1], resized and converted to data.channels."""
    x, levels = to_tensor(array, source, cfg)
    if cfg.channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1).contiguous()  # grey as RGB: the values and levels are unchanged
    return x, levels


def labelled(
    name: str, splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], source: str, cfg: DataConfig
) -> Dataset:
    """A Dataset from the official train and test splits, each cut to data.n_train / data.n_test."""
    x_train, y_train, x_test, y_test = splits
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if len(x) != len(y):
            raise GenbenchError(
                f"{source}: {len(x)} images but {len(y)} labels (delete the files to download them again)"
            )
    keep_train = _subset(len(x_train), cfg.n_train, SUBSET_SEED)
    keep_test = _subset(len(x_test), cfg.n_test, SUBSET_SEED + 1)
    train, levels = _images(x_train[keep_train], source, cfg)
    test, _ = _images(x_test[keep_test], source, cfg)
    return Dataset(
        name,
        train,
        test,
        levels=levels,
        num_classes=10,
        train_labels=torch.as_tensor(y_train[keep_train], dtype=torch.int64),
        test_labels=torch.as_tensor(y_test[keep_test], dtype=torch.int64),
    )


def _idx_dataset(name: str, cfg: DataConfig) -> Dataset:
    x_train, y_train, x_test, y_test = (read_idx(fetch(name, f)) for f in IDX_FILES)
    return labelled(name, (x_train, y_train, x_test, y_test), str(data_dir() / name), cfg)


@DATASETS.register(
    "mnist",
    "MNIST handwritten digits 28x28, 1 channel, 256 levels, 10 classes (60,000 train / "
    "10,000 test), downloaded on first use to $GENBENCH_DATA",
)
def mnist(cfg: DataConfig) -> Dataset:
    return _idx_dataset("mnist", cfg)


@DATASETS.register(
    "fashion_mnist",
    "Fashion-MNIST clothing 28x28, 1 channel, 256 levels, 10 classes (60,000 "
    "train / 10,000 test), downloaded on first use to $GENBENCH_DATA",
)
def fashion_mnist(cfg: DataConfig) -> Dataset:
    return _idx_dataset("fashion_mnist", cfg)


@DATASETS.register(
    "cifar10",
    "CIFAR-10 32x32 RGB, 256 levels, 10 classes (50,000 train / 10,000 test), "
    "downloaded on first use to $GENBENCH_DATA",
)
def cifar10(cfg: DataConfig) -> Dataset:
    path = fetch("cifar10", CIFAR10_FILE)
    return labelled("cifar10", read_cifar10(path), str(path), cfg)


def celeba_source(cfg: DataConfig) -> Path:
    """data.path, or img_align_celeba.zip in the cache when data.path is empty."""
    path = Path(cfg.path) if cfg.path else data_dir() / "celeba" / "img_align_celeba.zip"
    if not path.exists():
        raise ConfigError(
            f"CelebA not found at {path}",
            key="data.path",
            fix=f"download img_align_celeba.zip ('Align&Cropped Images', hosted on Google Drive) from "
            f"{CELEBA_PAGE}; set data.path to the zip or its extracted img_align_celeba/ folder, "
            f"or put the zip at {data_dir() / 'celeba' / 'img_align_celeba.zip'}",
        )
    return path


def celeba_images(path: Path, stack: ExitStack) -> tuple[list[str], Callable[[str], object]]:
    """Sorted image names and an opener (name -> file object or path), from the zip or the folder."""
    if path.is_dir():
        folder = path / "img_align_celeba" if (path / "img_align_celeba").is_dir() else path
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return names, lambda n: str(folder / n)
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError) as exc:
        raise GenbenchError(
            f"{path}: not a readable zip file: {exc} (give img_align_celeba.zip or its folder in data.path)"
        ) from None
    names = sorted(
        n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES and not n.startswith("__MACOSX")
    )
    return names, lambda n: io.BytesIO(archive.read(n))


def center_square(source: object, name: str, size: int) -> np.ndarray:
    """One face -> (size, size, 3) uint8: the central square crop (178x178 of 178x218), then resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            img = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise GenbenchError(f"{name}: not a readable image: {exc} (remove or replace the file)") from None
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = img.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))  # Pillow filters when shrinking


@DATASETS.register(
    "celeba",
    "CelebA aligned faces from your copy: data.path = img_align_celeba.zip or its folder; "
    "centre 178x178 crop resized to data.image_size (64), fixed-seed split",
)
def celeba(cfg: DataConfig) -> Dataset:
    path = celeba_source(cfg)
    with ExitStack() as stack:
        names, opener = celeba_images(path, stack)
        train, test, levels = _celeba_splits(path, names, opener, cfg)
    return Dataset("celeba", train, test, levels=levels)


def _celeba_splits(
    path: Path, names: list[str], opener: Callable[[str], object], cfg: DataConfig
) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    if len(names) < 2:
        raise GenbenchError(
            f"{path}: {len(names)} image(s) (a train and a test split need at least 2; data.path "
            "should be img_align_celeba.zip or its folder)"
        )
    # decode only the images the run keeps: all 202,599 faces at 64x64 would take minutes and ~10 GB as floats
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(SUBSET_SEED)).tolist()
    n_test = min(cfg.n_test, max(1, int(round(len(names) * cfg.test_fraction))), len(names) - 1)
    picks = {"test": order[:n_test], "train": order[n_test : n_test + cfg.n_train]}
    size = cfg.image_size or CELEBA_SIZE
    progress = _Progress(f"decoding CelebA from {path}", len(picks["train"]) + len(picks["test"]), "images")
    split: dict[str, torch.Tensor] = {}
    levels: int | None = None
    done = 0
    for key, idx in picks.items():
        faces = []
        for i in idx:
            faces.append(center_square(opener(names[i]), names[i], size))
            done += 1
            progress(done)
        split[key], levels = _images(np.stack(faces), str(path), cfg)
    progress(done, final=True)
    return split["train"], split["test"], levels
