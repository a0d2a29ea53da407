"""cost.usd from the cluster profile: a trial pays its GPU share of a GPU node, else its CPU share of the node."""

from __future__ import annotations

import pytest

from genbench.cluster.profiles import Profile
from genbench.sweep.spec import Study
from genbench.sweep.tuner import _pricing


def _profile(gpus: int = 0, cpus: int = 8, price: float = 2.0) -> Profile:
    return Profile(
        name="p", source="p.yaml", storage="/x", gpus_per_node=gpus, cpus_per_node=cpus, price_per_node_hour=price
    )


def test_node_share_is_the_gpu_share_on_gpu_nodes_and_the_cpu_share_elsewhere() -> None:
    assert _profile(gpus=8).node_share(cpus=1, gpus=0.25) == pytest.approx(0.25 / 8)  # not 1 CPU of 8
    assert _profile(gpus=8).node_share(cpus=2, gpus=0.0) == pytest.approx(2 / 8)  # a CPU trial on a GPU node
    assert _profile().node_share(4, 0) == 0.5 and _profile().node_share(16, 0) == 1.0
    assert _profile(cpus=0).node_share(1, 0) == 1.0  # unknown node size: the trial pays the whole node
    assert _profile(gpus=1).node_share(1, 2.0) == 1.0  # never more than the node


def test_every_row_is_priced_by_what_it_held() -> None:
    study = Study(
        name="s", families=["gan"], objectives=[], budget=None, dry_run=None, fixed={}, space={}, cpus_per_trial=1
    )
    price = _pricing(study, _profile(gpus=4, cpus=32, price=8.0))
    half_hour = {"cost.wall_s": 1800.0}
    assert price({**half_hour, "cost.gpu_share": 0.5})["cost.usd"] == pytest.approx(0.5 * 8.0 * 0.5 / 4)
    assert price({**half_hour, "cost.gpu_share": 0.0})["cost.usd"] == pytest.approx(0.5 * 8.0 * 1 / 32)
    assert price({"status": "failed"}) == {}  # no wall time measured, no price
    assert _pricing(study, _profile(price=0.0)) is None and _pricing(study, None) is None
