"""The test heads of ray_heads behave: fake GPUs reach tasks, and the fake autoscaler adds and ends nodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ray_heads import Head, alive, cmdline, connect, pids_naming

pytestmark = pytest.mark.ray


def _tasks(ray: Any, n: int, meet: Path, **resources: Any) -> list[Any]:
    """n tasks that each wait (up to 60 s) until all n have started, hold 1 s, and return what they saw.

    The rendezvous proves the n ran at once without betting on a sleep against worker start-up on 2 cores.
    """

    @ray.remote(**resources)
    def task(i: int) -> dict[str, Any]:
        import os
        import time

        start = time.time()
        (meet / str(i)).touch()
        while len(os.listdir(meet)) < n and time.time() - start < 60:
            time.sleep(0.05)
        met = len(os.listdir(meet))
        time.sleep(1)
        return {
            "start": start,
            "end": time.time(),
            "met": met,
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "node": ray.get_runtime_context().get_node_id(),
        }

    meet.mkdir()
    return [task.remote(i) for i in range(n)]


def _worker_nodes(ray: Any) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]


def test_fractional_gpu_tasks_share_the_two_fake_gpus(gpu_head: Head, tmp_path: Path) -> None:
    with connect(gpu_head) as ray:
        assert ray.cluster_resources()["GPU"] == 2
        seen = ray.get(_tasks(ray, 4, tmp_path / "meet", num_gpus=0.5))
        assert [s["met"] for s in seen] == [4] * 4  # all four ran at once: 4 CPUs, two 0.5-GPU tasks per GPU
        assert max(s["start"] for s in seen) < min(s["end"] for s in seen)
        assert sorted(s["cuda"] for s in seen) == ["0", "0", "1", "1"]

        @ray.remote(num_gpus=0)
        def no_gpu() -> tuple[str | None, list[int]]:
            import os

            return os.environ.get("CUDA_VISIBLE_DEVICES"), ray.get_gpu_ids()

        # Ray 2.60 leaves CUDA_VISIBLE_DEVICES unset for a task without GPUs (ray-project/ray#54868), so on a
        # real machine such a task sees every GPU: genbench has to mask it itself.
        assert ray.get(no_gpu.remote()) == (None, [])


def test_fake_autoscaler_adds_nodes_for_waiting_tasks_and_stop_ends_them(
    autoscaling_head: Head, tmp_path: Path
) -> None:
    with connect(autoscaling_head) as ray:
        assert ray.cluster_resources().get("CPU", 0) == 0 and not _worker_nodes(ray)  # no worker node yet
        began = time.monotonic()
        refs = _tasks(ray, 4, tmp_path / "meet", num_cpus=1, num_gpus=0.5)
        while len(_worker_nodes(ray)) < 2:  # the tasks cannot end before both nodes are up (rendezvous)
            assert time.monotonic() - began < 90, f"only {len(_worker_nodes(ray))} worker nodes came up"
            time.sleep(0.5)
        during = autoscaling_head.processes()  # the fake nodes' raylets and the task workers among them
        assert sum("raylet/raylet" in cmdline(pid) for pid in during) == 3  # the head's and two fake nodes'
        seen = ray.get(refs)
        assert [s["met"] for s in seen] == [4] * 4 and len({s["node"] for s in seen}) == 2
        assert max(s["start"] for s in seen) < min(s["end"] for s in seen)  # more than one at once: all four
    autoscaling_head.stop()
    assert not alive(during) and not pids_naming(autoscaling_head.tmp)
    assert not Path(autoscaling_head.tmp).exists()
