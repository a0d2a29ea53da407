"""ResultsStore: trial-keyed atomic Parquet writes, union of columns, safe names, study.yaml, schema version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from genbench.errors import ConfigError, GenbenchError
from genbench.results import ResultsStore, safe_name
from genbench.results.schema import SCHEMA_VERSION, TRIAL_COLUMNS, table_from_rows


def _row(status: str = "completed", modes: float = 20.0) -> dict[str, Any]:
    return {
        "study": "s",
        "family": "gan",
        "status": status,
        "seed": 0,
        "error": "",
        "config.gan.loss": "hinge",
        "quality.modes": modes,
        "start_time": 1.7e9,
        "end_time": 1.7e9 + 5,
    }


HISTORY = [{"step": 5, "train.loss_d": 1.0}, {"step": 10, "train.loss_d": 0.9, "eval.modes": 3.0}]


def test_two_trials(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("t1", _row(), HISTORY)
    store.write_trial("t2", _row("diverged", 2.0), HISTORY)
    table = store.read("trials")
    assert table.num_rows == 2 and store.trial_ids() == {"t1", "t2"}
    assert table.column_names[:4] == ["trial_id", "study", "family", "status"]
    assert {"seed", "error", "config.gan.loss", "quality.modes", "start_time", "end_time"} <= set(table.column_names)
    assert pa.types.is_timestamp(table.schema.field("start_time").type)
    rows = {r["trial_id"]: r for r in table.to_pylist()}
    assert rows["t2"]["status"] == "diverged" and rows["t2"]["quality.modes"] == 2.0
    assert ds.dataset(str(tmp_path / "trials"), format="parquet").to_table().num_rows == 2
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_history_is_a_union_of_columns(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("a", _row(), HISTORY)
    store.write_trial("b", _row(), [{"step": 5, "train.loss_d": 2.0, "train.penalty": 0.5}])
    history = store.read("history")
    assert history.num_rows == 3
    assert {"trial_id", "step", "train.loss_d", "eval.modes", "train.penalty"} <= set(history.column_names)
    rows = sorted(history.to_pylist(), key=lambda r: (r["trial_id"], r["step"]))
    assert [r["eval.modes"] for r in rows] == [None, 3.0, None]
    assert [r["train.penalty"] for r in rows] == [None, None, 0.5]


def test_rewrite_replaces_the_row(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("t1", _row("failed"), HISTORY)
    store.write_trial("t1", _row("completed", 25.0), HISTORY[:1])
    trials = store.read("trials").to_pylist()
    assert len(trials) == 1 and trials[0]["status"] == "completed" and trials[0]["quality.modes"] == 25.0
    assert store.read("history").num_rows == 1


def test_empty_store_reads_empty(tmp_path: Path) -> None:
    assert ResultsStore(str(tmp_path / "none")).read("trials").num_rows == 0


def test_schema_version_metadata(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("t1", _row(), HISTORY)
    for part in ("trials/part-t1.parquet", "history/part-t1.parquet"):
        assert pq.read_schema(tmp_path / part).metadata[b"genbench.schema_version"] == str(SCHEMA_VERSION).encode()
    assert store.read("trials").schema.metadata[b"genbench.schema_version"] == str(SCHEMA_VERSION).encode()


def test_parts_of_schema_1_read_beside_the_current_ones(tmp_path: Path) -> None:
    """A study resumed across the optimiser-section change (schema 1 -> 2) holds parts of both: every row is read,
    each with the columns of its own version (the old optim.cosine / optim.warmup null in the new rows)."""
    old = table_from_rows(
        [{**_row(), "trial_id": "old", "family": "flow", "config.optim.cosine": True, "config.optim.warmup": 100}],
        TRIAL_COLUMNS,
    )
    (tmp_path / "trials").mkdir()
    old = old.replace_schema_metadata({b"genbench.schema_version": b"1"})
    pq.write_table(old, tmp_path / "trials/part-old.parquet")
    store = ResultsStore(str(tmp_path))
    store.write_trial(
        "new",
        {**_row(), "family": "flow", "config.optim.lr_decay": "cosine", "config.optim.warmup_steps": 100},
        HISTORY,
    )
    rows = {r["trial_id"]: r for r in store.read("trials").to_pylist()}
    assert rows["old"]["config.optim.cosine"] is True and rows["old"]["config.optim.lr_decay"] is None
    assert rows["new"]["config.optim.lr_decay"] == "cosine" and rows["new"]["config.optim.cosine"] is None
    assert rows["new"]["config.optim.warmup_steps"] == rows["old"]["config.optim.warmup"] == 100
    assert not store.unreadable("trials")


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "..", "a..b", ".hidden", "-x", "x" * 129, "a b"])
def test_safe_name_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        safe_name(bad)


@pytest.mark.parametrize("good", ["trial_01-a.b", "gan_stability", "T1", "x" * 128])
def test_safe_name_accepts(good: str) -> None:
    assert safe_name(good) == good


def test_bad_trial_id_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trial_id"):
        ResultsStore(str(tmp_path)).write_trial("../evil", _row(), HISTORY)
    assert not list(tmp_path.rglob("*"))


def test_study_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    study = {"study": "s", "space": {"gan.loss": {"choice": ["hinge", "wasserstein"]}}, "versions": {"torch": "2"}}
    store.write_study(study)
    assert store.read_study() == study
    assert ResultsStore(str(tmp_path)).read_study() == study
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_read_study_missing(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="study.yaml"):
        ResultsStore(str(tmp_path / "missing")).read_study()


def test_corrupt_part_is_skipped_and_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = ResultsStore(str(tmp_path))
    store.write_trial("t1", _row(), HISTORY)
    (tmp_path / "trials" / "part-t2.parquet").write_bytes(b"not parquet")
    assert store.read("trials").column("trial_id").to_pylist() == ["t1"]  # more in tests/test_reliability.py
    assert "part-t2.parquet: unreadable results part skipped" in capsys.readouterr().err


def test_plain_pyarrow_dataset_reads_every_part_whole_whatever_part_comes_first(tmp_path) -> None:
    import pyarrow.dataset as pads

    store = ResultsStore(str(tmp_path))
    store.write_trial("a-failed", {"status": "failed", "error": "boom"}, [{"step": 5, "train.loss_d": 1.0}])
    store.write_trial(
        "b-done",
        {
            "status": "completed",
            "quality.modes": 25.0,
            "stability.diverged": False,
            "cost.params": 10,
            "likelihood.method": "exact",
        },
        [{"step": 5, "train.loss_d": 0.5, "eval.modes": 20.0}],
    )
    trials = pads.dataset(tmp_path / "trials", format="parquet").to_table().to_pydict()
    assert trials["quality.modes"] == [None, 25.0] and trials["stability.diverged"] == [None, False]
    assert trials["likelihood.method"] == [None, "exact"]
    history = pads.dataset(tmp_path / "history", format="parquet").to_table().to_pydict()
    assert history["eval.modes"] == [None, 20.0]
