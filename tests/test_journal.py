"""The Optuna journal beside the results: in place at a local path, a mirrored local copy for a URI (a local S3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import optuna
import pyarrow.fs as pafs
import pytest
import yaml
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from genbench.results.store import ResultsStore
from genbench.sweep.journal import journal_storage


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory tempfile hands out in this test, to see the journal's local copy come and go."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _bucket_uri() -> str:
    return f"s3://genbench/journal-{uuid.uuid4().hex[:8]}"


def _run_trials(storage: object, n: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="j", storage=storage, load_if_exists=True)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=n)
    return study


def _remote_journal(uri: str) -> bytes:
    fs, root = pafs.FileSystem.from_uri(uri)
    with fs.open_input_stream(f"{root}/optuna.journal") as f:
        return f.read()


def _remote_trials(uri: str, tmp_path: Path, name: str = "j") -> list[optuna.trial.FrozenTrial]:
    """The trials in <uri>/optuna.journal, read back through Optuna from a downloaded copy."""
    copy = tmp_path / f"copy-{uuid.uuid4().hex[:8]}.journal"
    copy.write_bytes(_remote_journal(uri))
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(copy)))
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_a_uri_journal_appears_after_a_sync_and_a_resume_elsewhere_loads_its_trials(
    s3: dict[str, str], private_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = _bucket_uri()
    fs, root = pafs.FileSystem.from_uri(uri)
    with journal_storage(ResultsStore(uri), False, "j") as (storage, sync):
        study = _run_trials(storage, 3)
        params = [t.params for t in study.trials]
        [local] = list(private_tmp.iterdir())  # the searcher appends to a private local copy
        assert fs.get_file_info(f"{root}/optuna.journal").type == pafs.FileType.NotFound  # until a sync
        sync()
        assert [t.state for t in _remote_trials(uri, tmp_path)] == [TrialState.COMPLETE] * 3
        study.ask()  # a trial the driver never finishes, as if it were killed while the trial ran
    assert not local.exists() and not list(private_tmp.iterdir())  # the copy is gone when the sweep ends
    assert [t.state for t in _remote_trials(uri, tmp_path)][-1] == TrialState.RUNNING  # the final sync took it
    torn = b'{"op_code": 5, "wor'  # and a torn last line, as a driver killed inside an append leaves
    ResultsStore(uri).write_bytes("", "optuna.journal", _remote_journal(uri) + torn)
    with journal_storage(ResultsStore(uri), True, "j") as (storage, sync):  # a resume, in a fresh temp dir
        resumed = optuna.load_study(study_name="j", storage=storage).get_trials(deepcopy=False)
        assert [t.params for t in resumed[:3]] == params
        assert [t.state for t in resumed] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]  # stale: failed
        _run_trials(storage, 1)  # the searcher goes on from the 3 it knows
    out = capsys.readouterr().out
    assert f"Resume: {uri}/optuna.journal: dropped a torn last entry of {len(torn)} bytes" in out
    assert [t.state for t in _remote_trials(uri, tmp_path)] == [TrialState.COMPLETE] * 3 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert not list(private_tmp.iterdir())


def test_a_resume_without_a_journal_at_the_uri_starts_the_searcher_afresh(
    s3: dict[str, str], private_tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = _bucket_uri()
    with journal_storage(ResultsStore(uri), True, "j") as (storage, _):
        assert len(_run_trials(storage, 1).trials) == 1
    assert f"Resume: {uri}/optuna.journal not found; the searcher starts without" in capsys.readouterr().out


def test_the_local_copy_is_removed_when_the_sweep_fails(s3: dict[str, str], private_tmp: Path) -> None:
    with pytest.raises(RuntimeError, match="the driver failed"):
        with journal_storage(ResultsStore(_bucket_uri()), False, "j") as (storage, _):
            _run_trials(storage, 1)
            raise RuntimeError("the driver failed")
    assert not list(private_tmp.iterdir())


def test_a_local_journal_is_the_file_beside_the_results_and_needs_no_copy(tmp_path: Path, private_tmp: Path) -> None:
    out = tmp_path / "out"
    with journal_storage(ResultsStore(str(out)), False, "j") as (storage, sync):
        _run_trials(storage, 2)
        before = (out / "optuna.journal").read_bytes()
        sync()
        assert (out / "optuna.journal").read_bytes() == before and not list(private_tmp.iterdir())
    assert sorted(p.name for p in out.iterdir()) == ["optuna.journal"]
    with journal_storage(ResultsStore(str(out)), True, "j") as (storage, _):
        assert len(optuna.load_study(study_name="j", storage=storage).trials) == 2


STUDY = """
study: mirrored
family: autoregressive
data: {name: ring8, n_train: 500, n_test: 200}
objectives: [{metric: likelihood.nll, mode: min}]
budget: {trials: 4, steps: 30, eval_every: 15}
dry_run: {trials: 4, steps: 30, eval_every: 15}
search: {algorithm: tpe, seed: 0, max_concurrent: 2}
fixed: {train.batch_size: 32, eval.n_samples: 200}
space:
  optim.lr: {float: [1.0e-4, 3.0e-2], log: true}
"""


@pytest.mark.ray
def test_a_cluster_study_interrupted_and_resumed_keeps_its_searcher(s3: dict[str, str], tmp_path: Path) -> None:
    """A sweep with results on S3, killed inside its second trial's row, then resumed: the journal there goes on."""
    (tmp_path / "s.yaml").write_text(STUDY)
    uri = f"{_bucket_uri()}/mirrored"
    cmd = [sys.executable, "-m", "genbench", "sweep", str(tmp_path / "s.yaml"), "--out", uri]
    tmp = tmp_path / "tmp"  # the drivers' temporary files (the journal's local copy); Ray's stay where they were
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "RAY_TMPDIR": os.environ.get("RAY_TMPDIR", tempfile.gettempdir())}
    # writes: study.yaml, then per trial samples, model, history, row and the journal's copy: 10 is the second
    # trial's row
    driver = subprocess.Popen(
        cmd,
        env={**env, "GENBENCH_FAULT": "write:10"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert driver.wait(timeout=300) == 137
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the local Ray it started dies with it, as with a lost machine
        except ProcessLookupError:
            pass
    store = ResultsStore(uri)
    [before] = store.read("trials").to_pylist()
    [finished] = [t for t in _remote_trials(uri, tmp_path, "mirrored") if t.state == TrialState.COMPLETE]
    assert finished.params["optim.lr"] == pytest.approx(before["config.optim.lr"])
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Done: 4 trials (4 completed)" in resumed.stdout
    trials = store.read("trials").to_pandas()
    assert len(trials) == 4 and trials["trial_id"].is_unique and before["trial_id"] in set(trials["trial_id"])
    assert store.model_ids() == sorted(trials["trial_id"])  # kept models in the bucket; the killed row's removed
    states = _remote_trials(uri, tmp_path, "mirrored")
    assert "RUNNING" not in {t.state.name for t in states}  # what the killed driver left running is FAIL
    complete = [t for t in states if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and finished.number in {t.number for t in complete}  # the searcher kept its trial
    assert sorted(t.values[0] for t in complete) == pytest.approx(sorted(trials["likelihood.nll"]))
    with store.fs.open_input_stream(store.path("summary.yaml")) as f:
        assert yaml.safe_load(f.read())["importances"]["likelihood.nll"]  # PED-ANOVA read the mirrored journal
    assert len(list(tmp.glob("genbench-journal-*"))) == 1  # the killed driver's; the resume removed its own
