"""Crash-safe local files: a temporary file beside the target, fsynced, renamed over it, the directory fsynced."""
from __future__ import annotations

import os


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
