"""Studies as Ray jobs on a real local Ray head with its Jobs API on 127.0.0.1 and token authentication."""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from genbench.cli import main
from genbench.results.store import ResultsStore
from ray_heads import Head, free_port

pytestmark = pytest.mark.ray

TINY_STUDY = """
study: tiny_cluster
family: gan
data: {name: ring8, n_train: 1000, n_test: 300}
objectives: [{metric: quality.modes, mode: max}]
budget: {trials: 2, steps: 200000, eval_every: 100000}
dry_run: {trials: 2, steps: 30, eval_every: 15}
search: {algorithm: random, seed: 1}
fixed: {gan.g_width: 8, gan.d_width: 8, gan.g_depth: 1, gan.d_depth: 1, train.batch_size: 32,
        train.log_every: 5, eval.n_samples: 300}
space:
  gan.loss: {choice: [non_saturating, hinge]}
"""


# The cluster's own identity: the storage keys the head (so its jobs) is started with, never shipped with a job.
NODE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(), "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20)}


@pytest.fixture(scope="module")
def head() -> Iterator[tuple[Head, str]]:
    """The head, started with the storage keys in its environment, with its token (and no RAY_ADDRESS) in this
    process's environment for the module's tests."""
    token = secrets.token_hex(16)
    h = Head(token, extra_env=NODE_KEYS)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_ADDRESS", raising=False)
        mp.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        mp.setenv("RAY_AUTH_TOKEN", token)
        try:
            h.wait_ready()
            yield h, token
        finally:
            h.stop()


@pytest.fixture(scope="module")
def s3(head: tuple[Head, str], s3: dict[str, str]) -> dict[str, str]:
    """The shared S3 server (tests/conftest.py), its endpoint set after the head started: jobs get it from the
    profile (not a secret), their keys from the head's environment (moto takes any)."""
    return s3


@pytest.fixture(scope="module")
def cluster(
    head: tuple[Head, str], s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Head, Path, Path]:
    """A cluster profile of the test head (results on the S3 server; the job gets its endpoint and region, and names
    the keys the nodes hold) and a study."""
    h, _ = head
    root = tmp_path_factory.mktemp("cluster")
    profile = root / "test-head.yaml"
    settings = {k: s3[k] for k in ("AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")}
    profile.write_text(
        f"genbench:\n  name: test-head\n  address: {h.url}\n  storage: s3://genbench/studies\n"
        f"  price_per_node_hour: 0.5\n  trial_resources: {{cpus_per_trial: 1}}\n"
        f"  python: {sys.executable}\n  env: {json.dumps(settings)}\n"
        f"  credentials_env: {json.dumps(sorted(NODE_KEYS))}\n"
    )
    study = root / "tiny.yaml"
    study.write_text(TINY_STUDY)
    return h, profile, study


def _submit(study: Path, profile: Path, *extra: str) -> tuple[str, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["submit", str(study), "--cluster", str(profile), *extra]) == 0
    job_id = re.search(r"Submitted (\S+) to", out.getvalue()).group(1)
    assert f"genbench jobs logs {job_id} --follow" in out.getvalue()
    return job_id, re.search(r"Results:\s+(\S+)", out.getvalue()).group(1)


def _wait(url: str, job_id: str, states: tuple[str, ...], timeout: float = 120) -> str:
    from genbench.cluster.jobs import job_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job_status(url, job_id)["status"]
        if status in states:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{job_id} did not reach {states}: {status}")


@pytest.fixture(scope="module")
def dry_run_job(cluster: tuple[Head, Path, Path]) -> tuple[str, str, str]:
    """`genbench submit tiny.yaml --cluster test-head.yaml --dry-run`, waited for: (job id, results, status)."""
    h, profile, study = cluster
    job_id, results = _submit(study, profile, "--dry-run")
    return job_id, results, _wait(h.url, job_id, ("SUCCEEDED", "FAILED", "STOPPED"))


def test_stop_a_running_job(cluster: tuple[Head, Path, Path], capsys: pytest.CaptureFixture) -> None:
    h, profile, study = cluster
    job_id, _ = _submit(study, profile)  # the full budget: 200,000 steps, far longer than the test
    assert _wait(h.url, job_id, ("RUNNING", "FAILED", "SUCCEEDED")) == "RUNNING"
    assert main(["jobs", "stop", job_id, "--address", h.url]) == 0
    assert capsys.readouterr().out.strip() == f"{job_id}: STOPPED"


def test_submit_dry_run_succeeds_with_results_in_the_profile_storage(
    cluster: tuple[Head, Path, Path], dry_run_job: tuple[str, str, str], capsys: pytest.CaptureFixture
) -> None:
    h, profile, _ = cluster
    job_id, results, status = dry_run_job
    assert results == "s3://genbench/studies/tiny_cluster-dry-run"  # the profile's storage
    assert main(["jobs", "logs", job_id, "--cluster", str(profile)]) == 0
    logs = capsys.readouterr().out
    assert status == "SUCCEEDED", logs[-3000:]
    assert "dry-run tiny_cluster: 2 trials" in logs and f"Results:   {results}/" in logs
    assert main(["jobs", "logs", job_id, "--follow", "--address", h.url]) == 0  # ends with the job
    assert f"Results:   {results}/" in capsys.readouterr().out
    assert main(["jobs", "status", job_id, "--address", h.url]) == 0
    assert capsys.readouterr().out.startswith(f"{job_id}: SUCCEEDED")
    assert main(["jobs", "status", job_id, "--address", h.url, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {k: record[k] for k in ("id", "status", "results")} == {
        "id": job_id,
        "status": "SUCCEEDED",
        "results": results,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["start"]) and record["end"] >= record["start"]
    store = ResultsStore(results)
    trials = store.read("trials").to_pandas()
    assert len(trials) == 2
    assert (trials["cost.usd"] - trials["cost.wall_s"] / 3600 * 0.5).abs().max() < 1e-12  # price_per_node_hour
    assert store.read_study()["cluster"]["name"] == "test-head"
    assert store.read_study()["constants"]["train.threads"] == 1  # the profile's trial resources
    assert main(["jobs", "list", "--address", h.url]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["jobs", "list", "--address", h.url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["address"] == h.url and record in listed["jobs"]  # the same record as `jobs status --json`
    starts = [j["start"] or "" for j in listed["jobs"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    s3fs, root = pafs.FileSystem.from_uri(results)
    assert s3fs.get_file_info(f"{root}/dashboards/index.html").type == pafs.FileType.File  # written by the job
    assert s3fs.get_file_info(pafs.FileSelector(f"{root}/ray", allow_not_found=True))  # Ray Tune's state
    assert s3fs.get_file_info(f"{root}/optuna.journal").type == pafs.FileType.File  # the searcher's, mirrored
    s3fs.delete_dir(f"{root}/dashboards")
    assert main(["dashboard", results]) == 0  # rebuilt here, straight from the bucket
    assert s3fs.get_file_info(f"{root}/dashboards/index.html").type == pafs.FileType.File
    capsys.readouterr()
    assert main(["report", results]) == 0 and "tiny_cluster" in capsys.readouterr().out
    assert main(["report", results, "--json"]) == 0  # read straight from the bucket too
    report = json.loads(capsys.readouterr().out)
    assert report["study"] == "tiny_cluster" and report["runs"] == 2 and report["families"][0]["family"] == "gan"


def test_an_installed_genbench_travels_as_a_py_module_and_runs_there(
    cluster: tuple[Head, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Not run from a checkout (a wheel installed), submit ships the package folder as a Ray py_module: the job's
    log names the copy Ray unpacked as the genbench that ran, and the study completes with it."""
    from genbench.cluster import jobs

    h, profile, _ = cluster
    monkeypatch.setattr(jobs, "PROJECT_ROOT", tmp_path)  # no platform/genbench there: as for an installed genbench
    study = tmp_path / "one.yaml"
    study.write_text(TINY_STUDY.replace("dry_run: {trials: 2, steps: 30", "dry_run: {trials: 1, steps: 10"))
    job_id, _ = _submit(study, profile, "--dry-run", "--out", "s3://genbench/studies/installed")
    status = _wait(h.url, job_id, ("SUCCEEDED", "FAILED", "STOPPED"))
    assert main(["jobs", "logs", job_id, "--address", h.url]) == 0
    logs = capsys.readouterr().out
    assert status == "SUCCEEDED", logs[-3000:]
    ran = next(line for line in logs.splitlines() if line.startswith("genbench ") and " from " in line)
    assert "/runtime_resources/py_modules_files/" in ran and ran.endswith("/genbench"), ran
    assert "dry-run tiny_cluster: 1 trials" in logs


def test_the_job_record_holds_no_secret(cluster: tuple[Head, Path, Path], dry_run_job: tuple[str, str, str]) -> None:
    """What `ray job list` and the dashboard show of the job (runtime env, metadata, entrypoint): the keys' names,
    never their values, though the job wrote its results with them."""
    import requests

    h, _, _ = cluster
    job_id, _, status = dry_run_job
    record = requests.get(
        f"{h.url}/api/jobs/{job_id}", timeout=10, headers={"Authorization": f"Bearer {h.token}"}
    ).json()
    text = json.dumps(record)
    assert status == "SUCCEEDED" and record["runtime_env"]["env_vars"]["AWS_ENDPOINT_URL_S3"].startswith("http://")
    assert not [name for name, value in NODE_KEYS.items() if value in text]
    assert not set(record["runtime_env"]["env_vars"]) & set(NODE_KEYS)


def test_wrong_or_missing_token_is_one_clear_message(
    cluster: tuple[Head, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, profile, study = cluster
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong-token")
    assert main(["jobs", "list", "--address", h.url]) == 2
    err = capsys.readouterr().err
    assert "token authentication failed, the token was refused" in err and "RAY_AUTH_TOKEN" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token either
    assert main(["submit", str(study), "--cluster", str(profile), "--dry-run"]) == 2
    assert "token authentication failed, no token was sent" in capsys.readouterr().err


def test_an_unknown_job_is_one_clear_message(cluster: tuple[Head, Path, Path], capsys: pytest.CaptureFixture) -> None:
    h, _, _ = cluster
    assert main(["jobs", "status", "genbench-nope", "--address", h.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"genbench: error: {h.url}: ") and "genbench-nope" in err and "Traceback" not in err


def test_unreachable_cluster_is_one_clear_message(capsys: pytest.CaptureFixture) -> None:
    assert main(["jobs", "list", "--address", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "cannot reach the Jobs API" in capsys.readouterr().err


def test_results_read_through_a_uri_with_the_endpoint_in_its_query(
    s3: dict[str, str], dry_run_job: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow.fs URIs may carry the endpoint themselves (?endpoint_override=...&scheme=http)."""
    _, results, _ = dry_run_job
    endpoint = s3["AWS_ENDPOINT_URL_S3"].removeprefix("http://")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    by_query = ResultsStore(f"{results}?endpoint_override={endpoint}&scheme=http")
    assert len(by_query.read("trials")) == 2 and by_query.read_study()["study"] == "tiny_cluster"
