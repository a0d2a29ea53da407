"""cost.usd from the cluster profile's price per node-hour, added to every trials part without losing anything."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genbench.cluster.remote import add_usd, node_share
from genbench.results.store import ResultsStore


def test_node_share() -> None:
    assert node_share(4, 8) == 0.5 and node_share(8, 8) == 1.0 and node_share(16, 8) == 1.0
    assert node_share(1, 0) == 1.0  # unknown node size: the trial pays the whole node


def test_add_usd_prices_each_row_and_keeps_the_rest(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("t1", {"study": "s", "family": "gan", "status": "completed", "seed": 0, "cost.wall_s": 1800.0},
                      [{"step": 1, "train.loss_d": 0.5}])
    store.write_trial("t2", {"study": "s", "family": "gan", "status": "failed", "seed": 1, "cost.wall_s": 360.0}, [])
    before = store.read("trials").to_pandas()
    assert add_usd(str(tmp_path), 2.0) == 2
    assert add_usd(str(tmp_path), 2.0) == 2  # idempotent: the column is replaced, not repeated
    after = store.read("trials").to_pandas().set_index("trial_id")
    assert after.loc["t1", "cost.usd"] == pytest.approx(1.0) and after.loc["t2", "cost.usd"] == pytest.approx(0.2)
    assert after.drop(columns="cost.usd").reset_index()[before.columns].equals(before)
    part = pq.read_table(tmp_path / "trials" / "part-t1.parquet")
    assert part.schema.metadata[b"genbench.schema_version"]
    assert not [p for p in (tmp_path / "trials").iterdir() if p.name.startswith(".tmp")]
