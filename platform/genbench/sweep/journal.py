"""The Optuna study's journal beside the results: the file itself for a local path, a mirrored local copy for a URI."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from optuna.storages.journal import JournalFileBackend

from genbench.results.store import ResultsStore, fault

JOURNAL = "optuna.journal"


class Journal(JournalFileBackend):
    """Optuna's journal file with the 'journal' fault point inside its append (inert by default)."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        fault("journal", lambda: self._torn_append(logs))
        super().append_logs(logs)

    def _torn_append(self, logs: list[dict[str, Any]]) -> None:
        self._lock.acquire()  # a driver killed here leaves the lock taken and half a line written
        with open(self._file_path, "ab") as f:
            f.write(json.dumps(logs[0]).encode()[:20])


def optuna_storage(store: ResultsStore) -> Any:
    """The Optuna study in the journal file beside local results (crash-safe appends; optuna-dashboard opens it).

    None for a URI, where a journal cannot be appended in place: `journal_storage` mirrors a local copy there.
    """
    if "://" in store.uri:
        return None
    store.fs.create_dir(store.root, recursive=True)
    return _storage(store.path(JOURNAL))


def _storage(path: str) -> Any:
    import optuna

    return optuna.storages.JournalStorage(Journal(path))


def repair_journal(path: str) -> str:
    """Undo what a driver killed inside a journal append left: its lock file and a torn last line."""
    notes = []
    if os.path.lexists(path + ".lock"):
        os.unlink(path + ".lock")
        notes.append("removed the stale lock")
    if os.path.exists(path):
        with open(path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                f.truncate(keep)
                notes.append(f"dropped a torn last entry of {len(data) - keep} bytes")
    return "; ".join(notes)


def fail_stale_trials(storage: Any, study_name: str) -> int:
    """Trials a killed driver left RUNNING in the journal are marked FAIL, so that the searcher ignores them."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(stale)


@contextmanager
def journal_storage(store: ResultsStore, resume: bool, study_name: str) -> Iterator[tuple[Any, Callable[[], None]]]:
    """(storage, sync) of one sweep's Optuna study, whose journal is `<results>/optuna.journal`.

    A local path: the searcher appends to that file, and sync does nothing. A URI: it appends to a copy in a
    private temporary directory, which sync() uploads whole and atomically (call it after each trial's rows are
    written; a large journal goes at most every MIRROR_EVERY_S; it runs once more when the block ends without
    error); the directory is removed however the block ends. With `resume` the journal is fetched first (URI),
    repaired and its stale RUNNING trials marked FAIL.
    """
    if "://" not in store.uri:
        yield (_resumed(store, store.path(JOURNAL), study_name) if resume else optuna_storage(store)), lambda: None
        return
    tmp = tempfile.mkdtemp(prefix="genbench-journal-")
    try:
        path = os.path.join(tmp, JOURNAL)
        if resume:
            _fetch(store, path)
        sync = Mirror(store, path)
        yield (_resumed(store, path, study_name) if resume else _storage(path)), sync
        sync(force=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resumed(store: ResultsStore, path: str, study_name: str) -> Any:
    """The storage of a resumed sweep: its journal repaired, the trials a killed driver left RUNNING failed."""
    if note := repair_journal(path):
        print(f"Resume: {_shown(store)}: {note}")
    storage = _storage(path)
    fail_stale_trials(storage, study_name)
    return storage


def _shown(store: ResultsStore) -> str:
    """Where the journal is, as the user named the results: a path, or scheme://bucket/.../optuna.journal."""
    scheme = store.uri.split("://")[0] + "://" if "://" in store.uri else ""
    return scheme + store.path(JOURNAL)


def _fetch(store: ResultsStore, path: str) -> None:
    """Copy `<results>/optuna.journal` to `path`; without one (results made before it was mirrored) say so."""
    try:
        with store.fs.open_input_stream(store.path(JOURNAL)) as f:
            data = f.read()
    except FileNotFoundError:
        print(
            f"Resume: {_shown(store)} not found; the searcher starts without the finished trials "
            "(they are kept and counted)"
        )
        return
    with open(path, "wb") as f:
        f.write(data)


MIRROR_WHOLE_BYTES = 2**20  # a journal up to this size is uploaded after every trial (about 800 trials)
MIRROR_EVERY_S = 30.0  # a larger one at most this often: uploads of the whole file would grow with the study


class Mirror:
    """sync() for a URI: upload the local journal to `<results>/optuna.journal` when it changed since the last.

    Past MIRROR_WHOLE_BYTES at most every MIRROR_EVERY_S (and always with `force`, at the end): re-uploading the
    whole journal after every trial would send O(trials^2) bytes, 60 GB over a study of 10,000 trials. A driver
    lost in between leaves a journal short of at most that many seconds of trials, whose rows are kept.
    """

    def __init__(self, store: ResultsStore, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.path, self.sent, self.clock = store, path, -1, clock
        self.sent_at = -math.inf

    def __call__(self, force: bool = False) -> None:
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if size == self.sent:  # the journal only grows: an unchanged size is an unchanged journal
            return
        if not force and size > MIRROR_WHOLE_BYTES and self.clock() - self.sent_at < MIRROR_EVERY_S:
            return
        with open(self.path, "rb") as f:
            self.store.write_bytes("", JOURNAL, f.read())
        self.sent, self.sent_at = size, self.clock()
