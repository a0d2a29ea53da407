"""Studies as Ray jobs: submission through the Jobs API with Ray's token, and list, status, logs, stop."""
from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genbench.cluster.profiles import Profile
from genbench.cluster.remote import CLUSTER_ENV, STUDY_ENV
from genbench.errors import GenbenchError

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # platform/genbench/cluster/jobs.py -> the repository
# gitignore patterns: "/x" is the repository's own x (platform/genbench/results/ is code and must travel)
EXCLUDES = ["/.venv", "/venv", "/results", "/.git", "**/__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
            "*.egg-info", "/build", "/test-artifacts", "*.parquet", "*.pt", "*.ckpt"]
TOKEN_HELP = ("set RAY_AUTH_TOKEN to the cluster's token, or put it in ~/.ray/auth_token "
              "(or a file named by RAY_AUTH_TOKEN_PATH); `ray get-auth-token` on the head prints it")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def resolve_address(address: str | None, profile: Profile | None) -> str:
    """--address, else $RAY_ADDRESS, else the profile's; the Jobs API is the dashboard's http URL."""
    env = os.environ.get("RAY_ADDRESS", "")
    env = "" if env in ("auto", "local") else env  # ray.init's words, not a Jobs API
    chosen = address or env or (profile.address if profile else "")
    if chosen.startswith("ray://"):
        raise GenbenchError(f"{chosen} is a Ray Client address; the Jobs API is the dashboard URL, "
                            "e.g. http://HEAD:8265 (--address or RAY_ADDRESS)")
    if not chosen:
        where = f" ({profile.source} has no address)" if profile else ""
        raise GenbenchError(f"no cluster address{where}: give --address http://HEAD:8265, set RAY_ADDRESS, "
                            "or add `address:` to the cluster profile")
    return chosen if "://" in chosen else f"http://{chosen}"


def auth_token() -> str:
    """Ray's token as Ray itself looks it up: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise GenbenchError(f"RAY_AUTH_TOKEN_PATH={path}: cannot read the token ({exc.strerror})") from None
    default = Path.home() / ".ray" / "auth_token"
    return default.read_text().strip() if default.is_file() else ""


@contextmanager
def api_errors(address: str) -> Iterator[None]:
    """Ray's and the network's exceptions as one clear GenbenchError (the CLI prints one line)."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        refused = str(exc).startswith("Authentication failed") or "Forbidden" in str(exc)  # 403, else 401
        problem = "the token was refused" if refused else "no token was sent"
        raise GenbenchError(f"{address}: token authentication failed, {problem}; {TOKEN_HELP}") from None
    except (requests.ConnectionError, ConnectionError) as exc:
        raise GenbenchError(f"cannot reach the Jobs API at {address} ({type(exc).__name__}); is the cluster up "
                            "and its dashboard port forwarded (`ray dashboard CLUSTER.yaml`)?") from None
    except RuntimeError as exc:
        raise GenbenchError(f"{address}: {str(exc).strip().splitlines()[-1]}") from None


def client(address: str) -> Any:
    """A JobSubmissionClient that sends the token itself, whatever RAY_AUTH_MODE says on this machine."""
    from ray.job_submission import JobSubmissionClient

    token = auth_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with api_errors(address):
        return JobSubmissionClient(address, headers=headers)


def study_text(space: str) -> str:
    """The study file's text, shipped as it is (errors on the cluster name its lines); the profile travels beside it
    (its trial resources fill in what the study's resources: leaves out)."""
    return Path(space).read_text(encoding="utf-8")


def runtime_env(space: str, profile: Profile) -> dict[str, Any]:
    """Ship the project (not its results, environments or caches); genbench imports from platform/ there."""
    env_vars = {"PYTHONPATH": "platform", STUDY_ENV: study_text(space),
                CLUSTER_ENV: json.dumps(profile.record()), **profile.env}
    if not (PROJECT_ROOT / "platform" / "genbench").is_dir():
        raise GenbenchError(f"genbench is not running from a source checkout ({PROJECT_ROOT}); submit ships the "
                            "repository to the cluster, so run it from a clone (pip install -e .)")
    renv: dict[str, Any] = {"working_dir": str(PROJECT_ROOT), "excludes": EXCLUDES, "env_vars": env_vars}
    if profile.pip:
        renv["pip"] = list(profile.pip)
    return renv


def entrypoint(space: str, profile: Profile, out: str, dry_run: bool) -> str:
    """The job's shell command; the profile's python is left unquoted so that `$HOME/venv/bin/python` works."""
    args = ["-m", "genbench.cluster.remote", Path(space).name, "--out", out] + (["--dry-run"] if dry_run else [])
    return f"{profile.python} {shlex.join(args)}"


def submit(space: str, profile: Profile, address: str, dry_run: bool, out: str | None) -> tuple[str, str]:
    """Validate the study here, then submit it; returns (job id, results URI)."""
    from genbench.sweep.spec import load_study

    study = load_study(space)  # a bad study fails here, before anything is shipped
    out = out or profile.results_uri(study.name, dry_run)
    if "://" not in out and not os.path.isabs(out):
        raise GenbenchError(f"results location {out!r} is relative: on a cluster it must be a path every node "
                            "shares (absolute) or a URI such as s3://bucket/prefix; set `storage:` in the profile "
                            "or give --out")
    if "?" in out:
        raise GenbenchError(f"results location {out!r}: Ray Tune's storage cannot take a URI query; give the "
                            "endpoint to the job instead, e.g. `env: {AWS_ENDPOINT_URL_S3: http://HOST:PORT}` "
                            "in the profile")
    jobs = client(address)
    job_id = f"genbench-{study.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with api_errors(address):
        jobs.submit_job(entrypoint=entrypoint(space, profile, out, dry_run), submission_id=job_id,
                        runtime_env=runtime_env(space, profile),
                        metadata={"genbench.study": study.name, "genbench.results": out})
    return job_id, out


def list_jobs(address: str) -> list[dict[str, str]]:
    """One dict per job, newest first: id, status, start time, entrypoint (short)."""
    jobs = client(address)
    with api_errors(address):
        infos = jobs.list_jobs()
    rows = []
    for info in sorted(infos, key=lambda i: i.start_time or 0, reverse=True):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((info.start_time or 0) / 1000))
        rows.append({"id": info.submission_id or info.job_id or "?", "status": str(info.status.value),
                     "start": started, "results": (info.metadata or {}).get("genbench.results", "")})
    return rows


def job_status(address: str, job_id: str) -> dict[str, str]:
    jobs = client(address)
    with api_errors(address):
        info = jobs.get_job_info(job_id)
    return {"id": job_id, "status": str(info.status.value), "message": info.message or "",
            "results": (info.metadata or {}).get("genbench.results", "")}


def job_logs(address: str, job_id: str) -> str:
    jobs = client(address)
    with api_errors(address):
        return jobs.get_job_logs(job_id)


def follow_logs(address: str, job_id: str, write: Callable[[str], None]) -> None:
    """Pass the job's log to `write` as it grows, until the job ends."""
    import asyncio

    jobs = client(address)

    async def tail() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            write(chunk)

    with api_errors(address):
        asyncio.run(tail())


def stop_job(address: str, job_id: str) -> str:
    """Ask the job to stop; returns its status once it has ended (or after 30 s)."""
    jobs = client(address)
    with api_errors(address):
        jobs.stop_job(job_id)
        deadline = time.monotonic() + 30
        status = str(jobs.get_job_status(job_id).value)
        while status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            status = str(jobs.get_job_status(job_id).value)
    return status
