"""One driver per results directory: a live holder refuses others, a dead one's lease is taken over with a note."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genbench.errors import GenbenchError
from genbench.results.lock import LEASE_S, LOCK_NAME, ResultsLock, holding, read_holder
from genbench.results.store import ResultsStore
from genbench.sweep.engine import prepare_out


def _lease(out: Path, **fields: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lease = {
        "pid": 1,
        "host": socket.gethostname(),
        "started": time.time(),
        "proc_start": "0",
        "refreshed": time.time(),
        "token": "other",
        **fields,
    }
    (out / LOCK_NAME).write_text(json.dumps(lease))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_live_driver_holds_the_directory_and_others_are_refused_naming_it(tmp_path: Path) -> None:
    with holding(str(tmp_path), "this run") as note:
        assert note == "" and read_holder(ResultsStore(str(tmp_path))).pid == os.getpid()
        with pytest.raises(
            GenbenchError,
            match=rf"in use by another genbench driver \(pid {os.getpid()} on "
            rf"{socket.gethostname()}, started .*\); --resume would mix two runs",
        ):
            ResultsLock(ResultsStore(str(tmp_path))).acquire("--resume")
        with pytest.raises(GenbenchError, match="in use by another genbench driver"):
            prepare_out(str(tmp_path))  # a new run would move the live directory aside
    assert not (tmp_path / LOCK_NAME).exists()  # released


def test_a_dead_drivers_lease_is_taken_over_and_the_message_says_so(tmp_path: Path) -> None:
    _lease(tmp_path, pid=_dead_pid(), proc_start="12345")
    with holding(str(tmp_path), "this run") as note:
        assert note.startswith("took over the results directory from a driver that is no longer running (pid ")
        assert read_holder(ResultsStore(str(tmp_path))).pid == os.getpid()


def test_another_hosts_lease_lives_while_it_is_refreshed(tmp_path: Path) -> None:
    _lease(tmp_path, host="elsewhere", refreshed=time.time())
    with pytest.raises(GenbenchError, match=r"pid 1 on elsewhere"):
        ResultsLock(ResultsStore(str(tmp_path))).acquire("this run")
    _lease(tmp_path, host="elsewhere", refreshed=time.time() - LEASE_S - 1)  # its host is gone
    with holding(str(tmp_path), "this run") as note:
        assert "no longer running (pid 1 on elsewhere" in note


def test_a_directory_with_a_journal_but_no_rows_is_moved_aside_not_joined(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "optuna.journal").write_text("{}\n")  # a driver killed before its first row
    assert prepare_out(str(out)) == str(out) and not out.exists()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.")]
    assert len(aside) == 1 and (aside[0] / "optuna.journal").exists()
