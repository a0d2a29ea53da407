"""Studies of thousands of trials: compaction of their parts (readers unchanged, crash-safe) and bounded dashboards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from genbench.results import ResultsStore
from genbench.results.store import COMPACTED
from genbench.sweep.tuner import recover


def _store(root: Path, configs: int = 6) -> ResultsStore:
    """`configs` configurations of two seeds, each with a three-step history; one failed without a curve."""
    store = ResultsStore(str(root))
    for c in range(configs):
        rows = [_row(f"c{c}", s, "failed" if c == 2 else "completed") for s in range(2)]
        history = (
            []
            if c == 2
            else [{"trial_id": f"c{c}_s{s}", "step": t, "train.loss": 1.0 / t} for s in range(2) for t in (1, 2, 3)]
        )
        store.write_config(f"c{c}", rows, history)
    return store


def _row(config_id: str, seed: int, status: str) -> dict[str, Any]:
    extra = {"quality.modes": float(seed)} if status == "completed" else {"error": "boom"}
    return {"trial_id": f"{config_id}_s{seed}", "config_id": config_id, "status": status, "seed": seed, **extra}


def _files(root: Path, rel: str) -> list[str]:
    return sorted(p.name for p in (root / rel).iterdir())


def test_compaction_merges_the_parts_and_every_reader_reads_the_same_rows(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = {rel: store.read(rel) for rel in ("trials", "history")}
    ids = store.trial_ids()
    assert store.compact_all() == 6 + 5  # the failed configuration wrote no history part
    for rel in ("trials", "history"):
        assert len(_files(tmp_path, rel)) == 1 and _files(tmp_path, rel)[0].startswith(COMPACTED)
        assert store.read(rel).equals(before[rel])  # same rows, order and columns
        plain = ds.dataset(tmp_path / rel, format="parquet").to_table()  # a reader that knows nothing of it
        assert plain.num_rows == before[rel].num_rows
    assert store.trial_ids() == ids and store.orphan_history() == []
    assert store.compact_all() == 0  # one file each already


def test_a_resumed_study_adds_parts_and_the_next_compaction_merges_them_with_the_first(tmp_path: Path) -> None:
    store = _store(tmp_path, 3)
    store.compact_all()
    store.write_config("c9", [_row("c9", 0, "completed")], [{"trial_id": "c9_s0", "step": 1, "train.loss": 0.5}])
    assert store.trial_ids() == {"c0", "c1", "c2", "c9"} and store.read("trials").num_rows == 7
    assert store.compact_all() == 4  # the compacted files and the new parts
    assert store.trial_ids() == {"c0", "c1", "c2", "c9"} and store.read("trials").num_rows == 7
    assert sorted(store.read("history").column("trial_id").to_pylist()).count("c9_s0") == 1


def test_a_compaction_killed_after_its_write_loses_and_doubles_nothing(tmp_path: Path) -> None:
    root = tmp_path / "out"
    store = _store(root)
    before = store.read("trials").sort_by("trial_id")
    code = "from genbench.results import ResultsStore\nResultsStore('out').compact('trials')\n"
    env = {**os.environ, "GENBENCH_FAULT": "compact:1"}  # killed with one merged part deleted, five left
    killed = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert killed.returncode == 137, killed.stderr
    assert len(_files(root, "trials")) == 1 + 5
    assert store.read("trials").sort_by("trial_id").equals(before) and store.trial_ids() == {f"c{c}" for c in range(6)}
    assert recover(store) == {f"c{c}" for c in range(6)}  # a resume finishes the deletions
    assert len(_files(root, "trials")) == 1 and store.read("trials").sort_by("trial_id").equals(before)


def test_a_compaction_killed_inside_its_write_leaves_the_parts_as_they_were(tmp_path: Path) -> None:
    root = tmp_path / "out"
    _store(root)
    code = "from genbench.results import ResultsStore\nResultsStore('out').compact('trials')\n"
    env = {**os.environ, "GENBENCH_FAULT": "write:1"}  # half the merged file written, not renamed
    killed = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert killed.returncode == 137, killed.stderr
    assert [n for n in _files(root, "trials") if not n.startswith(".tmp-")] == [f"part-c{c}.parquet" for c in range(6)]
    assert ResultsStore(str(root)).read("trials").num_rows == 12


def test_an_unreadable_part_is_left_out_of_the_merge_and_still_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = _store(tmp_path)
    bad = tmp_path / "trials" / "part-c4.parquet"
    bad.write_bytes(bad.read_bytes()[:50])
    assert store.compact("trials") == 5
    assert bad.exists() and store.unreadable("trials") == [str(bad)]  # a resume sets it aside and runs it again
    assert store.read("trials").num_rows == 10 and "part-c4.parquet" in capsys.readouterr().err


def test_orphan_history_is_not_merged_and_a_resume_still_removes_it(tmp_path: Path) -> None:
    store = _store(tmp_path, 4)
    (tmp_path / "trials" / "part-c1.parquet").unlink()  # as a driver killed between the two writes leaves it
    store.compact_all()
    orphan = str(tmp_path / "history" / "part-c1.parquet")
    assert store.orphan_history() == [orphan] and len(_files(tmp_path, "history")) == 2
    recover(store)
    assert "c1_s0" not in store.read("history").column("trial_id").to_pylist()


def _copies(ctx: Any, n: int) -> Any:
    """The context with its runs copied n times under new ids (their history too): a study n times as large."""
    import pandas as pd

    from genbench.dashboards.panels import Context

    def copy(frame: pd.DataFrame, i: int) -> pd.DataFrame:
        ids = {c: frame[c].astype(str) + f"r{i}" for c in ("trial_id", "config_id") if c in frame}
        return frame.assign(**ids)

    trials = pd.concat([copy(ctx.trials, i) for i in range(n)], ignore_index=True)
    history = pd.concat([copy(ctx.history, i) for i in range(n)], ignore_index=True)
    return Context(trials, history, ctx.study, ctx.summary, ctx.curve, ctx.samples)


def test_dashboard_pages_of_thousands_of_runs_stay_bounded(tmp_path: Path) -> None:
    """3,000 runs: the curve panels draw the best 100 and a band, scatters WebGL, the table its best rows."""
    from genbench.dashboards.site import build_page, load_context
    from genbench.dashboards.spec import load_pages
    from synthetic_study import synthetic_study

    synthetic_study(str(tmp_path), configs=20, seeds=3, steps=400, eval_every=200)
    base = load_context(str(tmp_path))
    sizes = {}
    for copies in (5, 50):  # 300 and 3,000 runs
        ctx = _copies(base, copies)
        sizes[copies] = {p.name: len(build_page(p, ctx).body) for p in load_pages()}
    for page, small in sizes[5].items():
        assert sizes[50][page] < 6 * small, (page, small, sizes[50][page])  # 10x the runs
    assert max(sizes[50].values()) < 3_000_000


def test_a_large_journal_is_mirrored_at_most_every_30_s_and_whole_at_the_end(tmp_path: Path) -> None:
    from genbench.sweep.journal import JOURNAL, MIRROR_EVERY_S, MIRROR_WHOLE_BYTES, Mirror

    now = [0.0]
    local, store = tmp_path / "local.journal", ResultsStore(str(tmp_path / "results"))
    mirror = Mirror(store, str(local), clock=lambda: now[0])
    uploaded = tmp_path / "results" / JOURNAL
    for size in (100, 200):  # small: after every trial
        local.write_bytes(b"x" * size)
        mirror()
        assert uploaded.stat().st_size == size
    local.write_bytes(b"x" * (MIRROR_WHOLE_BYTES + 1))
    mirror()  # the first past the size: 30 s since the last upload have not passed
    assert uploaded.stat().st_size == 200
    now[0] = MIRROR_EVERY_S
    mirror()
    assert uploaded.stat().st_size == MIRROR_WHOLE_BYTES + 1
    local.write_bytes(b"x" * (MIRROR_WHOLE_BYTES + 2))
    mirror()
    assert uploaded.stat().st_size == MIRROR_WHOLE_BYTES + 1
    mirror(force=True)  # the end of the sweep
    assert uploaded.stat().st_size == MIRROR_WHOLE_BYTES + 2
