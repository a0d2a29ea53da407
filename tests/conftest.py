"""Shared fixtures: a tiny GAN run on grid25, tiny GAN families, Ray clusters and heads, an S3 server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import ray_heads  # tests/ is on sys.path (rootdir conftest, no __init__.py)
from genbench.config import DataConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.families import FAMILIES
from ray_heads import Head, fake_autoscaling_config

TINY: dict[str, Any] = {
    "family": "gan",
    "data.name": "grid25",
    "data.n_train": 2000,
    "data.n_test": 500,
    "train.steps": 20,
    "train.batch_size": 64,
    "train.log_every": 5,
    "eval.every": 10,
    "eval.n_samples": 500,
    "gan.g_width": 16,
    "gan.d_width": 16,
    "gan.g_depth": 2,
    "gan.d_depth": 2,
}


@pytest.fixture
def tiny_flat() -> dict[str, Any]:
    """A fresh flat dict for a tiny GAN run on grid25 (20 steps, widths 16)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def grid25() -> Dataset:
    return load_dataset(DataConfig(name="grid25", n_train=2000, n_test=500))


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset(DataConfig(name="digits"))


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as runs use (train.threads): tiny nets on a shared 2-core machine thrash with more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_gan(grid25: Dataset) -> Callable[..., Any]:
    """make_gan(overrides, seed) -> a tiny GAN family built through the registry from TINY plus overrides."""

    def build(flat: dict[str, Any] | None = None, seed: int = 0) -> Any:
        torch.manual_seed(seed)
        cfg = from_flat({**TINY, **(flat or {})})
        return FAMILIES.get("gan").build(cfg, grid25)

    return build


@pytest.fixture
def two_nodes() -> Iterator[Any]:
    """A head and a second raylet on this machine (Ray's own multi-node test cluster), 1 CPU each.

    The test process does not connect to it; `two_nodes.address` is its GCS address, and
    `next(iter(two_nodes.worker_nodes))` the second raylet (for `two_nodes.remove_node`).
    """
    from ray.cluster_utils import Cluster

    # A free dashboard port: Cluster passes Ray's default 8265 explicitly, which Ray then never retries, and another
    # local Ray on this shared machine (a genbench run's, a colleague's tests) often holds it
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": ray_heads.free_port(),
        },
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@contextlib.contextmanager
def _running(head: Head) -> Iterator[Head]:
    """The head, ready, with no RAY_ADDRESS in this process's environment (nothing joins another cluster)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_ADDRESS", raising=False)
        try:
            head.wait_ready()
            yield head
        finally:
            head.stop()


@pytest.fixture(scope="module")
def gpu_head() -> Iterator[Head]:
    """A real local head (no token) with 4 CPUs and 2 fake GPUs; `.gcs_address` for ray.init / --address."""
    with _running(Head(num_cpus=4, num_gpus=2)) as head:
        yield head


@pytest.fixture
def autoscaling_head() -> Iterator[Head]:
    """A fake autoscaling cluster with no worker node yet: a head with 0 CPUs, and up to 2 `gpu_node` workers
    of {CPU: 2, GPU: 1} that Ray's fake_multinode autoscaler starts on demand (idle ones go after ~6 s).

    Per test, so every test starts from zero workers; `stop()` may be called early (it ends the fake nodes too).
    """
    workers = {"gpu_node": {"resources": {"CPU": 2, "GPU": 1}, "min_workers": 0, "max_workers": 2}}
    config = fake_autoscaling_config(workers, gcs_address="", max_workers=2)  # Head fills in its own address
    with _running(Head(autoscaling_config=config)) as head:
        yield head


@pytest.fixture
def descendants() -> Callable[[int], list[int]]:
    """descendants(pid) -> the pids of every process under pid (for tests that kill one of them)."""
    return ray_heads.descendants


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read the user's cache: the digit classifier is trained (once) for this session."""
    import os

    os.environ["GENBENCH_CACHE"] = str(tmp_path_factory.mktemp("genbench-cache"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1 with a bucket `genbench`; yields its endpoint URL."""
    moto_server = pytest.importorskip("moto.server")
    import logging

    import pyarrow.fs as pafs

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would bury a failure's output

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # 0: a free port
    server.start()
    try:
        host, port = server.get_host_and_port()
        pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}",
            scheme="http",
            access_key="testing",
            secret_key="testing",
            allow_bucket_creation=True,
        ).create_dir("genbench")
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_server: str) -> Iterator[dict[str, str]]:
    """The S3 server's endpoint and fake keys, in this process's environment (so its children's) for a module."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_server,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


# A study as a user writes it for their own images (docs/own-images.md): two families, a key both have searched
# (optim.lr) and keys of one family fixed or searched for that family's trials only. Random search seed 10 draws
# vae, flow, flow, vae: both rates, both latent sizes, both coupling counts.
IMAGE_STUDY = """
study: vae_flow_images
family: [vae, flow]
data: {name: files, path: images}
objectives: [{metric: likelihood.bpd, mode: min}, {metric: quality.fd, mode: min}]
budget: {trials: 4, steps: 6, eval_every: 3}
dry_run: {trials: 4, steps: 6, eval_every: 3}
search: {algorithm: random, seed: 10}
fixed:
  train.batch_size: 16
  train.log_every: 1
  eval.n_samples: 32
  vae: {vae.iwae_k: 2}
  flow: {flow.depth: 1}
space:
  optim.lr: {choice: [1.0e-3, 3.0e-3]}
  vae.latent_dim: {choice: [2, 3], when: {family: [vae]}}
  flow.couplings: {choice: [2, 4], when: {family: [flow]}}
"""


@pytest.fixture(scope="session")
def image_study_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real dry run of the VAE and the flow (4 trials, 6 steps) on 120 RGB 8x8 PNG files, run by
    genbench.run_study from a dict; its results folder. One per session: the browser tests read its pages, the keys
    and API tests its rows."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("image-study")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    for i in range(120):  # patches of one random colour each, with noise: (8, 8, 3) uint8
        patch = rng.integers(0, 256, 3) + rng.normal(0, 30, (8, 8, 3))
        Image.fromarray(np.clip(patch, 0, 255).astype(np.uint8)).save(root / "images" / f"{i:03d}.png")
    start = time.monotonic()
    # Through the Python API, from a dict (tests/test_api.py reads it back); a study file's dry run through the
    # CLI is tested in tests/test_sweep_ray.py
    run = (
        "import sys, yaml, genbench\n"
        f"outcome = genbench.run_study(yaml.safe_load({IMAGE_STUDY!r}), dry_run=True, out='results')\n"
        "print('\\n'.join(outcome.lines()))\n"
        "sys.exit(outcome.exit_code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", run],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )  # Tune pickles the driver: no capsys
    print(f"\nVAE/flow dry run on image files: {time.monotonic() - start:.1f} s")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root / "results"
