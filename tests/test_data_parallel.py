"""Data parallelism: two gloo workers with half the batch each take exactly the step one worker takes with all of it."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genbench.config import from_flat
from genbench.data import load_dataset
from genbench.families import FAMILIES
from genbench.train.parallel import make_data_parallel, mean_over_workers

FLAT = {
    "family": "autoregressive",
    "data.name": "grid25",
    "data.n_train": 512,
    "data.n_test": 128,
    "train.batch_size": 64,
    "seed": 3,
}


def _build() -> Any:
    torch.manual_seed(3)
    cfg = from_flat(FLAT)
    return FAMILIES.get("autoregressive").build(cfg, load_dataset(cfg.data))


def _batches() -> torch.Tensor:
    cfg = from_flat(FLAT)
    return load_dataset(cfg.data).train[:128].reshape(2, 64, -1)  # two steps of 64 rows: (S, B, D)


def _params(family: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for m in family.modules().values() for p in m.parameters()]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    family = _build()
    make_data_parallel(family)
    for batch in _batches():
        family.train_step(batch[rank::world])  # this worker's half: (B / world, D)
    scalars = mean_over_workers(torch.tensor([[float(rank)]]))
    if rank == 0:
        torch.save({"params": _params(family), "mean_rank": scalars}, out)
    # Both ranks leave together: a rank that tore gloo down while the other still used it aborted once in CI
    # ("terminate called without an active exception", SIGABRT at exit).
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_with_half_batches_match_one_worker_with_the_whole_batch(tmp_path: Any) -> None:
    out = str(tmp_path / "params.pt")
    mp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2, join=True, start_method="spawn")
    parallel = torch.load(out, weights_only=True)
    single = _build()
    before = _params(single)
    for batch in _batches():
        single.train_step(batch)
    after = _params(single)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # the step moved the weights
    for got, want in zip(parallel["params"], after):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert parallel["mean_rank"].item() == pytest.approx(0.5)  # window scalars are averaged over workers
