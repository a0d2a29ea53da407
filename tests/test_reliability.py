"""Reliability without Ray: killed writes, torn journals, corrupt parts, resume recovery and the security guarantees."""

from __future__ import annotations

import http.client
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from genbench.atomic import building
from genbench.cli import main
from genbench.errors import ConfigError
from genbench.results import ResultsStore
from genbench.results.store import fault
from genbench.shipped import STUDIES
from genbench.sweep.tuner import optuna_storage, recover, repair_journal

HISTORY = [{"step": 5, "train.loss": 1.0}, {"step": 10, "train.loss": 0.9, "eval.modes": 3.0}]


def _row(modes: float = 8.0) -> dict[str, Any]:
    return {"study": "s", "family": "gan", "status": "completed", "seed": 0, "error": "", "quality.modes": modes}


def _store(tmp_path: Path, n: int = 3) -> ResultsStore:
    store = ResultsStore(str(tmp_path))
    for i in range(n):
        store.write_trial(f"t{i}", _row(float(i)), HISTORY)
    return store


def _python(code: str, fault_spec: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENBENCH_FAULT": fault_spec}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_reader_skips_a_corrupt_part_names_it_and_reads_the_rest(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture
) -> None:
    store = _store(tmp_path / damage)
    bad = tmp_path / damage / "trials" / "part-t1.parquet"
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"x" * len(data), "empty": b""}[damage])
    table = store.read("trials")
    assert sorted(table.column("trial_id").to_pylist()) == ["t0", "t2"]
    assert store.read("history").num_rows == 6  # the history parts are intact
    assert list(store.skipped) == [str(bad)] and store.unreadable("trials") == [str(bad)]
    err = capsys.readouterr().err
    assert f"{bad}: unreadable results part skipped" in err and "Traceback" not in err


def test_dashboard_command_reports_the_skipped_part_and_still_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from synthetic_study import synthetic_study

    synthetic_study(str(tmp_path), configs=4, seeds=1)
    bad = sorted((tmp_path / "trials").glob("part-*.parquet"))[0]
    bad.write_bytes(bad.read_bytes()[:100])
    assert main(["dashboard", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert str(bad) in captured.err and "skipped" in captured.err
    assert (tmp_path / "dashboards" / "index.html").exists()


def test_a_write_killed_midway_leaves_no_partial_file_where_readers_look(tmp_path: Path) -> None:
    code = (
        "from genbench.results import ResultsStore\n"
        "s = ResultsStore('out')\n"
        "for i in range(3):\n"
        "    s.write_trial(f't{i}', {'status': 'completed', 'quality.modes': float(i)}, [{'step': 1}])\n"
    )
    killed = _python(code, "write:4", tmp_path)  # history t0, trials t0, history t1, then inside trials t1
    assert killed.returncode == 137, killed.stderr
    store = ResultsStore(str(tmp_path / "out"))
    assert store.trial_ids() == {"t0"} and store.read("trials").num_rows == 1 and not store.skipped
    torn = list((tmp_path / "out" / "trials").glob(".tmp-*"))
    assert len(torn) == 1 and torn[0].stat().st_size > 0  # half a file, under a name no reader looks at
    assert store.orphan_history() == [str(tmp_path / "out" / "history" / "part-t1.parquet")]


def test_a_builder_killed_while_holding_its_lock_blocks_no_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The lock beside a cache file or download (genbench.atomic.building) dies with its holder: the OS releases it."""
    target, holding = tmp_path / "cache" / "file.bin", tmp_path / "holding"
    code = (
        f"import pathlib, time\nfrom genbench.atomic import building\nwith building({str(target)!r}, 'x'):\n"
        f"    pathlib.Path({str(holding)!r}).touch()\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code])
    taken = threading.Event()
    try:
        deadline = time.monotonic() + 60
        while not holding.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
            time.sleep(0.01)

        def take() -> None:
            with building(target, "building file.bin"):
                taken.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not taken.wait(0.5)  # waits while the holder lives
        holder.kill()
        holder.wait()
        taker.join(10)
        assert taken.is_set(), "the dead holder's lock was not released"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert "waiting for another process building file.bin" in capsys.readouterr().err
    assert not target.with_name("file.bin.lock").exists()  # the file it left was reused, then removed


def test_fault_hook_is_inert_unless_armed_for_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENBENCH_FAULT", raising=False)
    fault("write")
    monkeypatch.setenv("GENBENCH_FAULT", "journal:1")
    fault("write")  # another point: nothing happens


def test_recover_sets_aside_corrupt_parts_and_removes_orphans_and_temporaries(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = _store(tmp_path, 4)
    (tmp_path / "trials" / "part-t1.parquet").write_bytes(b"PAR1 torn")
    (tmp_path / "trials" / "part-t3.parquet").unlink()  # killed between its history and its row
    (tmp_path / "trials" / ".tmp-abc-part-t9.parquet").write_bytes(b"half")
    for folder, name in (("models", "t0.pt"), ("models", "t3.pt"), ("samples", "t1.png"), ("samples", "t2.npy")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(b"file")  # t1's and t3's runs have no row: their files go
    assert recover(store) == {"t0", "t2"}
    assert sorted(p.name for p in tmp_path.glob("[ms]*/*")) == ["t0.pt", "t2.npy"]
    assert (tmp_path / "trials" / "_corrupt-part-t1.parquet").read_bytes() == b"PAR1 torn"  # kept, not deleted
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == ["part-t0.parquet", "part-t2.parquet"]
    assert not list((tmp_path / "trials").glob(".tmp-*"))
    out = capsys.readouterr().out
    assert "part-t1.parquet is unreadable" in out and "part-t3.parquet" in out
    assert "removed 2 sample and model files of runs without a row" in out
    import pyarrow.dataset as pads

    assert pads.dataset(tmp_path / "trials", format="parquet").to_table().num_rows == 2  # plain readers too


def _journal_code(trials: int) -> str:
    return (
        "import optuna\n"
        "from genbench.results import ResultsStore\n"
        "from genbench.sweep.tuner import optuna_storage\n"
        "optuna.logging.set_verbosity(optuna.logging.WARNING)\n"
        "s = optuna.create_study(study_name='j', storage=optuna_storage(ResultsStore('out')))\n"
        f"for i in range({trials}):\n"
        "    t = s.ask(); t.suggest_float('x', 0, 1); s.tell(t, float(i))\n"
    )


def test_a_journal_append_killed_midway_is_repaired_on_resume(tmp_path: Path) -> None:
    killed = _python(_journal_code(10), "journal:9", tmp_path)
    assert killed.returncode == 137, killed.stderr
    journal = tmp_path / "out" / "optuna.journal"
    assert Path(f"{journal}.lock").is_symlink() and not journal.read_bytes().endswith(b"\n")
    note = repair_journal(str(journal))
    assert "stale lock" in note and "torn last entry" in note
    storage = optuna_storage(ResultsStore(str(tmp_path / "out")))
    study = optuna.load_study(study_name="j", storage=storage)
    done = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    assert done >= 2  # an ask and a tell are a few appends each: the 9th falls inside the third trial
    trial = study.ask()  # and the journal takes new entries that read back
    study.tell(trial, 1.0)
    assert (
        len(
            optuna.load_study(study_name="j", storage=optuna_storage(ResultsStore(str(tmp_path / "out")))).get_trials(
                states=(optuna.trial.TrialState.COMPLETE,)
            )
        )
        == done + 1
    )
    assert repair_journal(str(journal)) == ""  # an intact journal is left alone


# Security


def test_dashboard_server_binds_loopback_and_serves_nothing_outside_its_folder(tmp_path: Path) -> None:
    from genbench.dashboards.serve import start_server

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("ok")
    (tmp_path / "secret.txt").write_text("secret")
    server = start_server(str(tmp_path / "site"), 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 404 and b"secret" not in response.read(), path
            conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_python_tag_in_a_study_is_refused_and_never_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    study = tmp_path / "evil.yaml"
    study.write_text(f"study: !!python/object/apply:os.system ['touch {marker}']\nfamily: gan\n")
    assert main(["validate", str(study)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error {study}:1: malformed YAML") and "python/object" in err and len(err.splitlines()) == 1
    assert not marker.exists()


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {os.environ['GENBENCH_MARKER']}",))


def test_a_pickle_payload_in_a_checkpoint_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from genbench.train import checkpoint

    marker = tmp_path / "pwned"
    monkeypatch.setenv("GENBENCH_MARKER", str(marker))
    torch.save({"family": {}, "loop": _Payload(), "torch_rng": torch.get_rng_state()}, tmp_path / "state.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        checkpoint.load(str(tmp_path), family=None)  # type: ignore[arg-type]
    assert not marker.exists()


@pytest.mark.parametrize("bad", ["../x", "/tmp/x", "..", "a/../../b", "x/..", "~root"])
def test_config_and_trial_ids_cannot_leave_the_results_directory(tmp_path: Path, bad: str) -> None:
    store = ResultsStore(str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="config_id"):
        store.write_config(bad, [{"trial_id": "ok", "status": "completed"}], HISTORY)
    with pytest.raises(ConfigError, match="trial_id"):
        store.write_config("ok", [{"trial_id": bad, "status": "completed"}], HISTORY)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_study_names_with_absolute_paths_are_refused_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    study = STUDIES / "gan_stability.yaml"
    evil = tmp_path / "abs.yaml"
    evil.write_text(study.read_text().replace("study: gan_stability", f"study: {tmp_path}/evil", 1))
    assert main(["dry-run", str(evil)]) == 2
    err = capsys.readouterr().err
    assert f"{evil}:" in err and "study" in err and "not allowed in a path" in err
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['true']",
        "!!python/object:os.system {a: 1}",
        "!!python/name:os.system ''",
        "!!set {a, b}",
    ],
)
def test_every_non_plain_yaml_tag_is_refused_with_its_line(tmp_path: Path, value: str) -> None:
    from genbench.yamlfile import load_yaml

    path = tmp_path / "s.yaml"
    path.write_text(f"study: s\nfixed:\n  data.name: {value}\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: malformed YAML: .*tag"):
        load_yaml(path)
