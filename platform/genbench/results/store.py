"""Atomic, trial-keyed writes of a study's results and their readers, on a local path or any pyarrow.fs URI."""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from genbench.atomic import replace_durably
from genbench.errors import ConfigError, GenbenchError
from genbench.results.names import HISTORY_PAD, TRIAL_PAD, safe_name
from genbench.results.samples import decode, pop_samples
from genbench.results.schema import TRIAL_COLUMNS, table_from_rows

_FAULT_HITS: dict[str, int] = {}
_WARNED: set[str] = set()
SAMPLE_EXTENSIONS = ("png", "npy")
ROW_FILES = {"samples": "samples", "model": "models"}  # a row's key carrying a file -> the folder it is written to
MODEL_EXT = "pt"
COMPACTED = "compacted-"  # a merged file: its footer lists the files it replaces (COVERS)
COVERS = b"genbench.covers"  # JSON list of the base names a compacted file holds, transitively


def fault(point: str, before_exit: Callable[[], None] | None = None) -> None:
    """Fault injection for the reliability tests, inert unless GENBENCH_FAULT=<point>:<n> is set.

    The n-th time this process reaches `point` it runs `before_exit` (e.g. half a write) and exits at once,
    as if SIGKILLed: no cleanup, no flush. Points: 'write' (inside a results write), 'journal' (inside an
    Optuna journal append), 'compact' (between the deletions of the parts a compaction merged); 'write-error'
    instead makes the n-th results write and every later one fail with ENOSPC, as a full disk does.
    """
    name, _, count = os.environ.get("GENBENCH_FAULT", "").partition(":")
    if name != point:
        return
    _FAULT_HITS[point] = _FAULT_HITS.get(point, 0) + 1
    if point == "write-error" and _FAULT_HITS[point] >= int(count or 1):  # the storage fails from then on
        raise OSError(errno.ENOSPC, "No space left on device (GENBENCH_FAULT)")
    if _FAULT_HITS[point] == int(count or 1):
        if before_exit is not None:
            before_exit()
        os._exit(137)


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path or a URI such as s3://bucket/prefix."""
    if "://" not in uri:
        import os

        return pafs.LocalFileSystem(), os.path.abspath(uri)
    from genbench.cluster.secrets import uri_credentials

    if found := uri_credentials(uri):  # it would be printed, and recorded where the results are
        raise ConfigError(
            f"credentials in the results URI ({found})",
            key="--out",
            fix="remove them: pyarrow reads credentials from the environment (AWS_ACCESS_KEY_ID, "
            "GOOGLE_APPLICATION_CREDENTIALS, ...) or the machine's identity",
        )
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(
            f"cannot open results location: {exc}", key="--out", fix="give a path or s3:// gs:// URI"
        ) from exc


def pop_files(row: dict[str, Any]) -> dict[str, Any]:
    """The encoded files a result row carries (ROW_FILES: its samples, its model), taken out of it."""
    return {key: row.pop(key) for key in ROW_FILES if key in row}


class ResultsStore:
    """A study's results directory: study.yaml, trials/ and history/ (part-<config_id>.parquet, merged into one
    compacted-<id>.parquet when a sweep ends)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.root = resolve(uri)
        self.skipped: dict[str, str] = {}  # unreadable part -> why, found by read()

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p for p in parts if p)])  # object stores refuse "a//b"

    def write_bytes(self, rel_dir: str, name: str, data: bytes, results: bool = True) -> None:
        """Write to a hidden temporary name beside the target, then rename: readers never see a partial file.

        On a local disk the file is fsynced before the rename (and the directory after it), so that a crash or a
        power loss leaves the old file or the whole new one, never an empty one; object stores write whole objects.
        `results`: a results write, counted by the fault points (the driver's lease, refreshed on a timer, is not).
        """
        self.fs.create_dir(self.path(rel_dir), recursive=True)
        tmp = self.path(rel_dir, f".tmp-{uuid.uuid4().hex}-{name}")  # dot files are ignored by pyarrow.dataset
        if results:
            fault("write-error")
        with self.fs.open_output_stream(tmp) as out:
            out.write(data[: len(data) // 2])
            if results:
                fault("write", out.flush)
            out.write(data[len(data) // 2 :])
        if isinstance(self.fs, pafs.LocalFileSystem):
            replace_durably(tmp, self.path(rel_dir, name))
        else:
            self.fs.move(tmp, self.path(rel_dir, name))

    def write_study(self, study: dict[str, Any]) -> None:
        text = yaml.safe_dump(study, sort_keys=False)
        self.write_bytes("", "study.yaml", text.encode())

    def write_trial(self, trial_id: str, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Write one trial's history, then its row: a row in `trials` means its history is complete."""
        safe_name(trial_id, "trial_id")
        self.write_config(trial_id, [{**row, "trial_id": trial_id}], [{"trial_id": trial_id, **h} for h in history])

    def write_config(self, config_id: str, rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
        """Write one configuration's per-seed rows (each with its trial_id) as one part, after their history.

        One part per configuration: a resumed sweep sees a configuration with all its seeds or not at all.
        """
        safe_name(config_id, "config_id")
        rows = [dict(r) for r in rows]
        for row in rows:
            safe_name(str(row["trial_id"]), "trial_id")
        for key, folder in ROW_FILES.items():  # before the row: a row in `trials` has its samples and model
            for trial_id, blob in pop_samples(rows, key).items():
                ext, data = decode(blob)
                self.write_bytes(folder, f"{trial_id}.{ext}", data)
        if history:
            table = table_from_rows(history, ("trial_id", "step"), HISTORY_PAD)
            self.write_bytes("history", f"part-{config_id}.parquet", _parquet_bytes(table))
        table = table_from_rows(rows, TRIAL_COLUMNS, TRIAL_PAD)
        self.write_bytes("trials", f"part-{config_id}.parquet", _parquet_bytes(table))

    def exists(self, *parts: str) -> bool:
        """Whether a file exists at `parts` below the root."""
        return self.fs.get_file_info(self.path(*parts)).type == pafs.FileType.File

    def read_samples(self, trial_id: str) -> tuple[str, bytes] | None:
        """(extension, bytes) of samples/<trial_id>.png or .npy; None when the trial has no sample file."""
        for ext in SAMPLE_EXTENSIONS:
            try:
                with self.fs.open_input_stream(self.path("samples", f"{safe_name(trial_id, 'trial_id')}.{ext}")) as f:
                    return ext, f.read()
            except (FileNotFoundError, OSError):
                continue
        return None

    def read_model(self, trial_id: str) -> bytes | None:
        """The bytes of models/<trial_id>.pt (genbench.train.model reads them); None when the run kept no model."""
        try:
            with self.fs.open_input_stream(self.path("models", f"{safe_name(trial_id, 'trial_id')}.{MODEL_EXT}")) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def model_ids(self) -> list[str]:
        """The trial ids with a kept model (models/<trial_id>.pt), sorted."""
        selector = pafs.FileSelector(self.path("models"), allow_not_found=True)
        names = (i.base_name for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)
        return sorted(n[: -len(MODEL_EXT) - 1] for n in names if n.endswith(f".{MODEL_EXT}") and not n.startswith("."))

    def write_table(self, name: str, table: pa.Table) -> None:
        """A derived table beside the results (budget_curve.parquet): replaced whole, atomically."""
        self.write_bytes("", name, _parquet_bytes(table))

    def trial_ids(self) -> set[str]:
        """Ids of the written parts: trial ids, or configuration ids when a study trains several seeds each; those
        merged into a compacted file are listed in its footer."""
        ids = set()
        for info in self._parts("trials"):
            names = self._covers(info.path) if info.base_name.startswith(COMPACTED) else [info.base_name]
            ids |= {n[len("part-") : -len(".parquet")] for n in names if n.startswith("part-")}
        return ids

    def _parts(self, rel_dir: str) -> list[pafs.FileInfo]:
        """The files a reader reads: parts and compacted files, less those a compacted file already holds (left
        behind by a compaction that stopped before it deleted them)."""
        infos = self._files(rel_dir)
        covered = {n for i in infos if i.base_name.startswith(COMPACTED) for n in self._covers(i.path)}
        return [i for i in infos if i.base_name not in covered]

    def _files(self, rel_dir: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path(rel_dir), allow_not_found=True)
        return sorted(
            (
                i
                for i in self.fs.get_file_info(selector)
                if i.base_name.startswith(("part-", COMPACTED)) and i.base_name.endswith(".parquet")
            ),
            key=lambda i: (not i.base_name.startswith(COMPACTED), i.path),  # merged rows first: they came first
        )

    def _covers(self, path: str) -> list[str]:
        """The base names a compacted file holds ([] where its footer cannot be read: a reader then skips it)."""
        try:
            metadata = pq.read_schema(path, filesystem=self.fs).metadata or {}
        except (pa.ArrowInvalid, OSError):
            return []
        return list(json.loads(metadata.get(COVERS, b"[]")))

    def compact(self, rel_dir: str, keep: Callable[[str], bool] = lambda name: True) -> int:
        """Merge the readable parts of `rel_dir` (and an earlier compacted file) into one compacted file, then
        delete them; returns how many files it merged (0: nothing to do). `keep(base_name)` picks the parts.

        Crash-safe: the merged file is written atomically and lists in its footer every file it holds, and the
        readers skip a listed file, so a compaction stopped before its deletions leaves every row read once; the
        next compaction (or a resume's recovery) deletes what it left. An unreadable part is left as it is.
        """
        self.drop_covered(rel_dir)
        infos = [i for i in self._parts(rel_dir) if keep(i.base_name)]
        table, infos = self._scan_readable(infos)
        if len(infos) < 2:
            return 0
        covers = {i.base_name for i in infos}
        covers.update(n for i in infos if i.base_name.startswith(COMPACTED) for n in self._covers(i.path))
        metadata = {**(table.schema.metadata or {}), COVERS: json.dumps(sorted(covers)).encode()}
        data = _parquet_bytes(table.replace_schema_metadata(metadata))
        self.write_bytes(rel_dir, f"{COMPACTED}{uuid.uuid4().hex[:12]}.parquet", data)
        for n, info in enumerate(infos):
            if n == 1:
                fault("compact")  # one merged part deleted, the others not yet
            self.fs.delete_file(info.path)
        return len(infos)

    def drop_covered(self, rel_dir: str) -> list[str]:
        """Delete the files that a compacted file holds already (what a stopped compaction left); their paths."""
        live = {i.path for i in self._parts(rel_dir)}
        dropped = [i.path for i in self._files(rel_dir) if i.path not in live]
        for path in dropped:
            self.fs.delete_file(path)
        return dropped

    def compact_all(self) -> int:
        """Compact `trials`, then the `history` of the written trials (an orphan history part is left for the
        resume that deletes it); returns the files merged."""
        merged = self.compact("trials")
        done = {f"part-{i}.parquet" for i in self.trial_ids()}
        return merged + self.compact("history", lambda name: name.startswith(COMPACTED) or name in done)

    def read(self, rel_dir: str) -> pa.Table:
        """All readable parts of `rel_dir` (`trials` or `history`) as one table over the union of their columns.

        A part that cannot be read (truncated, corrupted) is skipped with a warning naming it; see `unreadable`.
        """
        return self._scan_readable(self._parts(rel_dir))[0]

    def _scan_readable(self, infos: list[pafs.FileInfo]) -> tuple[pa.Table, list[pafs.FileInfo]]:
        """(the rows of the readable files among `infos`, those files)."""
        if not infos:
            return pa.table({}), []
        try:
            return self._scan([i.path for i in infos]), infos
        except (pa.ArrowInvalid, OSError):  # find the bad parts one by one, read the others
            good = [i for i in infos if self._readable(i.path)]
            return (self._scan([i.path for i in good]) if good else pa.table({})), good

    def _scan(self, paths: list[str]) -> pa.Table:
        schema = pa.unify_schemas([pq.read_schema(p, filesystem=self.fs) for p in paths], promote_options="permissive")
        return ds.dataset(paths, schema=schema, format="parquet", filesystem=self.fs).to_table()

    def _readable(self, path: str) -> bool:
        try:
            pq.read_table(path, filesystem=self.fs)
            return True
        except (pa.ArrowInvalid, OSError) as exc:
            self.skipped[path] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if path not in _WARNED:
                _WARNED.add(path)
                print(
                    f"genbench: warning: {path}: unreadable results part skipped ({self.skipped[path]}); "
                    "the other parts are read",
                    file=sys.stderr,
                    flush=True,
                )
            return False

    def unreadable(self, rel_dir: str) -> list[str]:
        """Paths of the parts of `rel_dir` that cannot be read (each also warned about once)."""
        return [i.path for i in self._parts(rel_dir) if not self._readable(i.path)]

    def set_aside(self, path: str) -> str:
        """Rename an unreadable part to '_corrupt-<name>': kept for inspection, ignored by every reader."""
        head, _, name = path.rpartition("/")
        aside = f"{head}/_corrupt-{name}"
        self.fs.move(path, aside)
        return aside

    def orphan_history(self) -> list[str]:
        """History parts without their trials part (a driver killed between the two writes of one trial)."""
        done = {f"part-{i}.parquet" for i in self.trial_ids()}
        return [
            i.path for i in self._parts("history") if not i.base_name.startswith(COMPACTED) and i.base_name not in done
        ]

    def orphan_files(self) -> list[str]:
        """Samples and models of runs without a row in `trials` (written by a driver killed before the row, or of
        a part set aside as unreadable): their configurations run again under new trial ids."""
        table = self.read("trials")
        rows = set(table.column("trial_id").to_pylist()) if "trial_id" in table.column_names else set()
        found = []
        for folder in ROW_FILES.values():
            for info in self.fs.get_file_info(pafs.FileSelector(self.path(folder), allow_not_found=True)):
                stem = info.base_name.rsplit(".", 1)[0]
                if info.type == pafs.FileType.File and not stem.startswith(".") and stem not in rows:
                    found.append(info.path)
        return sorted(found)

    def read_summary(self) -> dict[str, Any] | None:
        """summary.yaml (written at the end of every sweep); None where there is none yet, or a `genbench train`
        run's results (which have none)."""
        try:
            with self.fs.open_input_stream(self.path("summary.yaml")) as f:
                return yaml.safe_load(f.read().decode()) or {}
        except FileNotFoundError:
            return None

    def read_optional_table(self, name: str) -> pa.Table | None:
        """A derived table beside the results (budget_curve.parquet), or None where there is none."""
        try:
            return pq.read_table(self.path(name), filesystem=self.fs)
        except FileNotFoundError:
            return None

    def read_study(self) -> dict[str, Any]:
        try:
            with self.fs.open_input_stream(self.path("study.yaml")) as f:
                return yaml.safe_load(f.read().decode()) or {}
        except FileNotFoundError:
            raise GenbenchError(
                f"{self.path('study.yaml')}: not found; is {self.uri} a genbench results "
                "directory? (it is written by dry-run, sweep and train)"
            ) from None


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
