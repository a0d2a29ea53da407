"""Image downloads (MNIST, Fashion-MNIST, CIFAR-10) from a local HTTP mirror of tiny files, and CelebA from a zip."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import pickle
import socket
import struct
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.cli import main
from genbench.config import DataConfig
from genbench.data import downloads, load_dataset
from genbench.errors import ConfigError, GenbenchError
from together import run_together  # tests/ is on sys.path

N_TRAIN, N_TEST, SIDE = 12, 5, 6  # tiny stand-ins in the real file formats


def _load(**kwargs: object):
    return load_dataset(DataConfig(**kwargs))


def _idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _idx_files(folder: Path, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, SIDE, SIDE)),
        "train-labels-idx1-ubyte.gz": np.arange(N_TRAIN) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, SIDE, SIDE)),
        "t10k-labels-idx1-ubyte.gz": (np.arange(N_TEST) + 3) % 10,
    }
    folder.mkdir(parents=True)
    for name, array in arrays.items():
        _idx_gz(folder / name, array)
    return arrays


def _cifar_tar(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Five training batches of 2 images and a test batch of 3, pickled as dicts with bytes keys like the original."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    train = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    with tarfile.open(folder / downloads.CIFAR10_FILE, "w:gz") as tar:
        batches = [(f"data_batch_{i + 1}", train[2 * i : 2 * i + 2], [i, 9 - i]) for i in range(5)]
        batches.append(("test_batch", rng.integers(0, 256, (3, 3072), dtype=np.uint8), [7, 8, 9]))
        for name, data, labels in batches:
            blob = pickle.dumps({b"batch_label": name.encode(), b"data": data, b"labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return train, np.array([label for i in range(5) for label in (i, 9 - i)])


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@dataclass
class Traffic:
    """What the mirror was asked for (paths, in order), and how long it waits before answering each request."""

    requests: list[str] = field(default_factory=list)
    delay_s: float = 0.0


class _Counted(_Quiet):
    """Records every GET and answers it after the delay: a second fetcher can arrive while the first downloads."""

    def __init__(self, *args: object, traffic: Traffic, **kwargs: object) -> None:
        self.traffic = traffic  # set first: the base __init__ handles the request
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.traffic.requests.append(self.path)
        time.sleep(self.traffic.delay_s)
        super().do_GET()


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traffic: Traffic) -> Iterator[Path]:
    """A local HTTP mirror laid out like the cache (NAME/FILE), the env pointed at it, and a fresh cache."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = partial(_Counted, directory=str(root), traffic=traffic)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("GENBENCH_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "cache"))
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _dead_mirror(monkeypatch: pytest.MonkeyPatch) -> str:
    with socket.socket() as s:  # a port nobody listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("GENBENCH_DATA_MIRROR", url)
    return url


def _serve(monkeypatch: pytest.MonkeyPatch, mirror: Path, name: str, md5: dict[str, str] | None = None) -> None:
    """The test files' checksums replace the real ones for this test only."""
    base = downloads.REMOTES[name].base_url
    monkeypatch.setitem(downloads.REMOTES, name, downloads.Remote(base, md5 or _md5s(mirror / name)))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_download_verifies_caches_and_loads(
    name: str, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    arrays = _idx_files(mirror / name, seed=0)
    _serve(monkeypatch, mirror, name)
    data = _load(name=name)
    assert data.shape == (1, SIDE, SIDE) and len(data.train) == N_TRAIN and len(data.test) == N_TEST
    assert data.levels == 256 and data.num_classes == 10 and data.train.dtype == torch.float32
    expected = torch.as_tensor(arrays["train-images-idx3-ubyte.gz"], dtype=torch.float32) / 255
    assert torch.allclose(data.train[:, 0], expected) and 0 <= data.train.min() and data.train.max() <= 1
    assert data.train_labels.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()
    assert data.test_labels.tolist() == arrays["t10k-labels-idx1-ubyte.gz"].tolist()
    cache = tmp_path / "cache" / name
    assert sorted(p.name for p in cache.iterdir()) == sorted(arrays)  # the four files, no partial leftovers
    err = capsys.readouterr().err
    assert "downloading http://127.0.0.1" in err and f"saved {cache}" in err
    assert "\r" not in err  # stderr here is no terminal: whole lines, nothing rewritten in place

    _dead_mirror(monkeypatch)  # the second load must not touch the network
    again = _load(name=name)
    assert torch.equal(again.train, data.train) and torch.equal(again.test_labels, data.test_labels)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "out,reports,expected",
    [  # (seconds, bytes) reports, the last one final
        (
            _Terminal(),
            [(100.0, 1), (100.2, 2), (101.0, 3), (101.1, 4)],
            "\rx: 1.0 / 4.0 MB\rx: 3.0 / 4.0 MB\rx: 4.0 / 4.0 MB\n",
        ),
        (
            io.StringIO(),
            [(100.0, 1), (101.0, 2), (111.0, 3), (111.5, 4)],
            "x: 1.0 / 4.0 MB\nx: 3.0 / 4.0 MB\nx: 4.0 / 4.0 MB\n",
        ),
    ],
    ids=["terminal", "log"],
)
def test_download_progress_rewrites_a_terminal_line_and_prints_whole_lines_elsewhere(
    out: io.StringIO, reports: list[tuple[float, int]], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the line is rewritten at most twice a second; in a log, whole lines at most every 10 s."""
    clock = iter(t for t, _ in reports)
    monkeypatch.setattr(downloads.time, "monotonic", lambda: next(clock))
    progress = downloads._Progress("x", 4_000_000, out=out)
    for i, (_, mb) in enumerate(reports):
        progress(mb * 1_000_000, final=i == len(reports) - 1)
    assert out.getvalue() == expected


def test_subset_resize_and_channels(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _idx_files(mirror / "mnist", seed=0)
    _serve(monkeypatch, mirror, "mnist")
    full = _load(name="mnist")
    data = _load(name="mnist", n_train=5, n_test=2, image_size=4, channels=3)
    assert data.shape == (3, 4, 4) and len(data.train) == 5 and len(data.test) == 2 and data.levels is None
    assert torch.equal(data.train[:, 0], data.train[:, 1])  # grey copied to all three channels
    again = _load(name="mnist", n_train=5, n_test=2)
    assert all(any(torch.equal(img, ref) for ref in full.train) for img in again.train)  # a fixed subset
    assert torch.equal(again.train, _load(name="mnist", n_train=5, n_test=2).train)


def test_cifar10_pickled_batches(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, labels = _cifar_tar(mirror / "cifar10")
    _serve(monkeypatch, mirror, "cifar10")
    data = _load(name="cifar10")
    assert data.shape == (3, 32, 32) and len(data.train) == 10 and len(data.test) == 3 and data.levels == 256
    planes = torch.as_tensor(train.reshape(10, 3, 32, 32), dtype=torch.float32) / 255  # R, G, B planes
    assert torch.allclose(data.train, planes)
    assert data.train_labels.tolist() == labels.tolist() and data.test_labels.tolist() == [7, 8, 9]
    grey = _load(name="cifar10", channels=1)
    assert grey.shape == (1, 32, 32) and grey.levels is None


def test_fetchers_starting_together_download_once(mirror: Path, tmp_path: Path, traffic: Traffic) -> None:
    """Two trials of a node load CIFAR-10 at once: one downloads the archive (slowly), the other waits and reads it."""
    _cifar_tar(mirror / "cifar10")
    md5 = _md5s(mirror / "cifar10")
    traffic.delay_s = 1.0  # the first download is still running when the second process asks
    setup = f"""
from genbench.data import downloads
downloads.REMOTES["cifar10"] = downloads.Remote(downloads.REMOTES["cifar10"].base_url, {json.dumps(md5)})
"""
    results = run_together(setup, "print(downloads.fetch('cifar10', downloads.CIFAR10_FILE))", 2, tmp_path)
    archive = tmp_path / "cache" / "cifar10" / downloads.CIFAR10_FILE
    assert traffic.requests == [f"/cifar10/{downloads.CIFAR10_FILE}"]  # one download, not one per process
    assert [r.stdout.strip() for r in results] == [str(archive)] * 2
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]  # no lock or partial file left
    assert _md5s(archive.parent) == md5


def test_corrupted_download_is_refused_and_leaves_nothing(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _idx_files(mirror / "mnist", seed=0)
    md5 = _md5s(mirror / "mnist")
    md5["train-images-idx3-ubyte.gz"] = "0" * 32  # what the file should have been
    _serve(monkeypatch, mirror, "mnist", md5)
    with pytest.raises(GenbenchError) as info:
        _load(name="mnist")
    message = str(info.value)
    cache = tmp_path / "cache" / "mnist"
    assert "checksum mismatch" in message and "/mnist/train-images-idx3-ubyte.gz" in message
    assert str(cache / "train-images-idx3-ubyte.gz") in message and "GENBENCH_DATA" in message
    assert not cache.exists() or not any(cache.iterdir())  # neither the file nor a temporary part of it


def test_cached_file_with_wrong_checksum(mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _idx_files(mirror / "mnist", seed=0)
    _serve(monkeypatch, mirror, "mnist")
    by_hand = tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz"
    by_hand.parent.mkdir(parents=True)
    by_hand.write_bytes(b"truncated")
    with pytest.raises(GenbenchError, match="checksum mismatch.*delete it"):
        _load(name="mnist")


def test_bad_idx_magic_names_the_file(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _idx_files(mirror / "mnist", seed=0)
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + bytes(8)))
    _serve(monkeypatch, mirror, "mnist")
    with pytest.raises(GenbenchError, match=r"t10k-labels-idx1-ubyte\.gz: not an IDX file"):
        _load(name="mnist")


def test_unreachable_server_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "cache"))
    url = _dead_mirror(monkeypatch)
    with pytest.raises(GenbenchError) as info:
        _load(name="cifar10")
    message = str(info.value)
    assert f"{url}/cifar10/cifar-10-python.tar.gz" in message and "download failed" in message
    assert str(tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz") in message and "by hand" in message
    assert not any((tmp_path / "cache" / "cifar10").iterdir())
    code = main(["train", "vae", "--data", "cifar10", "--out", str(tmp_path / "out")])
    assert code != 0 and "genbench: error:" in capsys.readouterr().err


def test_default_urls_are_torchvisions_mirrors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENBENCH_DATA_MIRROR", raising=False)
    assert (
        downloads.source_url("mnist", "t10k-labels-idx1-ubyte.gz")
        == "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"
    )
    assert (
        downloads.source_url("cifar10", downloads.CIFAR10_FILE)
        == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    )
    assert all(len(md5) == 32 for remote in downloads.REMOTES.values() for md5 in remote.md5.values())


def _face(value: int) -> Image.Image:
    """A 12x16 'face' (the 178x218 aspect, tall): a red band in the top and bottom 2 rows that the centre crop drops."""
    img = Image.new("RGB", (12, 16), (value, value, value))
    for y in (0, 1, 14, 15):
        for x in range(12):
            img.putpixel((x, y), (255, 0, 0))
    return img


def _celeba_zip(path: Path, n: int = 10) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(n):
            buf = io.BytesIO()
            _face(20 * i).save(buf, format="PNG")
            archive.writestr(f"img_align_celeba/{i + 1:06d}.png", buf.getvalue())


def test_celeba_from_zip_and_folder(tmp_path: Path) -> None:
    _celeba_zip(tmp_path / "img_align_celeba.zip")
    data = _load(name="celeba", path=str(tmp_path / "img_align_celeba.zip"), image_size=4)
    assert data.shape == (3, 4, 4) and len(data.train) == 9 and len(data.test) == 1 and data.levels == 256
    assert torch.equal(data.train[:, 0], data.train[:, 1])  # the red band was cropped away: grey faces only
    with zipfile.ZipFile(tmp_path / "img_align_celeba.zip") as archive:
        archive.extractall(tmp_path / "unzipped")
    for folder in (tmp_path / "unzipped", tmp_path / "unzipped" / "img_align_celeba"):
        same = _load(name="celeba", path=str(folder), image_size=4)
        assert torch.equal(same.train, data.train) and torch.equal(same.test, data.test)
    small = _load(name="celeba", path=str(tmp_path / "img_align_celeba.zip"), n_train=3, channels=1)
    assert small.shape == (1, 64, 64) and len(small.train) == 3


def test_celeba_missing_names_data_path_and_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "cache"))
    with pytest.raises(ConfigError) as info:
        _load(name="celeba", path=str(tmp_path / "nowhere.zip"))
    assert info.value.key == "data.path" and "img_align_celeba.zip" in info.value.fix
    with pytest.raises(ConfigError, match=r"data\.path: CelebA not found at .*cache/celeba/img_align_celeba\.zip"):
        _load(name="celeba")
