"""Crash-safe local files: a temporary file beside the target, fsynced, renamed over it; one builder per file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to disk (a rename of unsynced data can leave an empty file after a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Rename the finished `tmp` over `path` so that after a crash `path` is the old file or the whole new one."""
    fsync_file(tmp)
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself is durable once its directory entry is
    finally:
        os.close(directory)


@contextlib.contextmanager
def building(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the exclusive lock `<path>.lock` while this process builds `path`; other processes wait here.

    Concurrent trials on a node would each download a data set or train a cache, the last rename winning:
    with the lock one builds, and the others, once it lets go, find the finished file (check again inside).
    flock is released by the OS when its holder dies, so a crashed builder never blocks the next one. `what`
    names the work in the one line a waiting process prints.
    """
    lock = Path(f"{os.fspath(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = _lock(lock, what)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held: see _lock
        handle.close()  # releases the lock


def _lock(lock: Path, what: str) -> IO[str]:
    """An open handle of `lock` holding its flock, once that file is still the one at the path.

    The holder removes the file before it lets go (no lock files are left beside the targets), so a process
    that waited on the removed file locks the new one instead; a file left by a crashed holder is reused.
    """
    waited = False
    while True:
        handle = open(lock, "a")  # "a": never truncates a file another process holds
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                print(f"waiting for another process {what} ({lock})", file=sys.stderr, flush=True)
                waited = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(lock)):
                return handle
        except FileNotFoundError:
            pass
        handle.close()
