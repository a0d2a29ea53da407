"""One driver per results directory: a lease beside the results that a live driver holds and refreshes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.results.store import ResultsStore

LOCK_NAME = "driver.lock"
REFRESH_S = 20.0  # the holder rewrites its lease this often
LEASE_S = 90.0  # a lease not refreshed for this long is dead (another host's driver; the host may be gone)
SETTLE_S = 1.0  # on an object store, the wait before reading a lease back to see whose write won


@dataclass(frozen=True)
class Holder:
    """Who holds a results directory: a driver process on a host, since when, last seen when."""

    pid: int
    host: str
    started: float  # epoch seconds
    proc_start: str  # the process's start time in /proc (a reused pid is another process)
    refreshed: float
    token: str  # this acquisition's id

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, started {since}"

    def alive(self, now: float) -> bool:
        """Same host: the process still runs (and is the same one); another host: its lease is fresh."""
        if self.host == socket.gethostname():
            return _proc_start(self.pid) == self.proc_start
        return now - self.refreshed < LEASE_S


def _proc_start(pid: int) -> str:
    """Field 22 of /proc/PID/stat ('' when the process has gone, or where /proc does not exist)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "" if os.path.isdir("/proc") else str(pid)  # no /proc: trust the pid
    return "" if fields[0] in ("Z", "X") else fields[19]


def _me(token: str) -> Holder:
    now = time.time()
    return Holder(os.getpid(), socket.gethostname(), now, _proc_start(os.getpid()), now, token)


def read_holder(store: ResultsStore) -> Holder | None:
    """The lease in the results directory, or None (none, or unreadable: a torn write of a dead driver)."""
    try:
        with store.fs.open_input_stream(store.path(LOCK_NAME)) as f:
            return Holder(**json.loads(f.read().decode()))
    except (FileNotFoundError, OSError, ValueError, TypeError):
        return None


def check_free(store: ResultsStore, action: str) -> None:
    """Refuse in one line, naming the holder, while a live driver holds the directory."""
    holder = read_holder(store)
    if holder is not None and holder.alive(time.time()):
        raise GenbenchError(
            f"{store.uri} is in use by another genbench driver ({holder.describe()}); {action} "
            "would mix two runs in one directory: wait for it to end (or stop it), or give another "
            "--out"
        )


class ResultsLock:
    """The lease of one driver on one results directory: taken, refreshed by a daemon thread, released."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        self.holder = _me(uuid.uuid4().hex)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, action: str) -> str:
        """Take the directory; returns a note when a dead driver's lease was taken over ('' otherwise)."""
        previous = read_holder(self.store)
        if previous is not None and previous.alive(time.time()):
            check_free(self.store, action)
        if previous is None and "://" not in self.store.uri:
            self._create_local(action)  # exclusive: of two drivers starting together, one creates it
        else:
            self._write()
            time.sleep(SETTLE_S)  # no exclusive create on object stores: the last write wins; see whose it was
        if (read_holder(self.store) or self.holder).token != self.holder.token:
            check_free(self.store, action)
        self._thread = threading.Thread(target=self._refresh, name="results-lock", daemon=True)
        self._thread.start()
        if previous is None:
            return ""
        return f"took over the results directory from a driver that is no longer running ({previous.describe()})"

    def _create_local(self, action: str) -> None:
        os.makedirs(self.store.root, exist_ok=True)
        try:
            fd = os.open(self.store.path(LOCK_NAME), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            check_free(self.store, action)  # a driver started at the same moment holds it now
            return self._write()  # it died at once: its lease is ours
        with os.fdopen(fd, "w") as f:
            json.dump(vars(self.holder), f)

    def _write(self) -> None:
        now = time.time()
        self.holder = Holder(**{**vars(self.holder), "refreshed": now})
        self.store.write_bytes("", LOCK_NAME, json.dumps(vars(self.holder)).encode(), results=False)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self._write()
            except OSError:  # a storage hiccup: the next refresh tries again; the lease lasts LEASE_S
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if (read_holder(self.store) or self.holder).token == self.holder.token:
            try:
                self.store.fs.delete_file(self.store.path(LOCK_NAME))
            except (FileNotFoundError, OSError):
                pass


@contextmanager
def holding(out: str, action: str) -> Iterator[str]:
    """Hold `out` for the duration of the block; yields the take-over note ('' when the directory was free)."""
    lock = ResultsLock(ResultsStore(out))
    note = lock.acquire(action)
    try:
        yield note
    finally:
        lock.release()
