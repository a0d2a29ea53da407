"""Studies as Ray jobs: submission through the Jobs API with Ray's token, and list, status, logs, stop."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genbench.cluster.profiles import Profile
from genbench.cluster.remote import CLUSTER_ENV, STUDY_ENV
from genbench.cluster.secrets import is_loopback, secret_name, secret_value, uri_credentials
from genbench.errors import GenbenchError

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # platform/genbench/cluster/jobs.py -> the repository
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the genbench package: a checkout's platform/genbench, or installed
# What `submit` never ships, as gitignore patterns ("/x": the repository's own x; platform/genbench/results/ and
# platform/genbench/data/ are code and must travel). Ray adds .gitignore, .rayignore and its own defaults.
EXCLUDES = [
    # environments, version control, caches, build output
    "/.venv",
    "/.venv-floors",
    "/venv",
    "/.git",
    "**/__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "*.egg-info",
    "/build",
    "/dist",
    "/.whl",
    "*.whl",
    "/test-artifacts",
    "node_modules",
    # results and data: a job writes its results to storage and reads data from where the study says
    "/results",
    "/data",
    "/datasets",
    "/checkpoints",
    "/outputs",
    "*.parquet",
    "*.arrow",
    "*.feather",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.safetensors",
    "*.npy",
    "*.npz",
    "*.h5",
    "*.hdf5",
    "*.pkl",
    "*.pickle",
    "*.tar",
    "*.tgz",
    "*.tar.gz",
    "*.zip",
    "*.journal",
    # secrets: keys, certificates, credential files and the folders tools keep them in
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.asc",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "*credentials*.json",
    "*credentials*.csv",
    "*accessKeys*.csv",
    "*service-account*.json",
    "*service_account*.json",
    "client_secret*.json",
    "auth_token",
    "*.token",
    ".aws/",
    ".ssh/",
    ".config/",
    ".gnupg/",
    ".kube/",
    ".docker/",
    ".azure/",
    ".ray/",
    ".gcloud/",
]
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")  # in any file, a service-account JSON too
SCANNED_BYTES = 4 << 20  # files up to this size are read for a private key (code is smaller; data is excluded)
TOKEN_HELP = (
    "set RAY_AUTH_TOKEN to the cluster's token, or put it in ~/.ray/auth_token "
    "(or a file named by RAY_AUTH_TOKEN_PATH); `ray get-auth-token` on the head prints it"
)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def resolve_address(address: str | None, profile: Profile | None) -> str:
    """--address, else $RAY_ADDRESS, else the profile's; the Jobs API is the dashboard's http URL."""
    env = os.environ.get("RAY_ADDRESS", "")
    env = "" if env in ("auto", "local") else env  # ray.init's words, not a Jobs API
    chosen = address or env or (profile.address if profile else "")
    if chosen.startswith("ray://"):
        raise GenbenchError(
            f"{chosen} is a Ray Client address; the Jobs API is the dashboard URL, "
            "e.g. http://HEAD:8265 (--address or RAY_ADDRESS)"
        )
    if not chosen:
        where = f" ({profile.source} has no address)" if profile else ""
        raise GenbenchError(
            f"no cluster address{where}: give --address http://HEAD:8265, set RAY_ADDRESS, "
            "or add `address:` to the cluster profile"
        )
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
        raise GenbenchError(
            f"cannot reach the Jobs API at {address} ({type(exc).__name__}); is the cluster up "
            "and its dashboard port forwarded (`ray dashboard CLUSTER.yaml`)?"
        ) from None
    except RuntimeError as exc:
        raise GenbenchError(f"{address}: {str(exc).strip().splitlines()[-1]}") from None


def check_transport(address: str, token: str, allow_insecure: bool = False) -> None:
    """Ray's token travels in clear over plain http: only to this machine, unless the user allows it (warned)."""
    from urllib.parse import urlsplit

    host = urlsplit(address).hostname or ""
    if not token or not address.startswith("http://") or is_loopback(host):
        return
    if not allow_insecure:
        raise GenbenchError(
            f"{address}: refusing to send Ray's token over plain http to {host}, where anyone on the "
            "way can read it; use an https:// address, or a tunnel to 127.0.0.1 (`ray dashboard "
            "CLUSTER.yaml`, `kubectl port-forward`), or pass --allow-insecure-token"
        )
    print(
        f"genbench: warning: sending Ray's token over plain http to {host} (--allow-insecure-token); anyone on "
        "the network path can read it and run code on the cluster",
        file=sys.stderr,
    )


def client(address: str, allow_insecure: bool = False) -> Any:
    """A JobSubmissionClient that sends the token itself, whatever RAY_AUTH_MODE says on this machine, to `address`
    only (requests drops it on a redirect to another host), and over plain http only to loopback (check_transport)."""
    from ray.job_submission import JobSubmissionClient

    token = auth_token()
    check_transport(address, token, allow_insecure)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with api_errors(address):
        return JobSubmissionClient(address, headers=headers)


def study_text(space: str) -> str:
    """The study file's text, shipped as it is (errors on the cluster name its lines); the profile travels beside it
    (its trial resources fill in what the study's resources: leaves out)."""
    return Path(space).read_text(encoding="utf-8")


def from_checkout() -> bool:
    """Whether this genbench is a source checkout's platform/genbench (run as is, or installed editable)."""
    return (PROJECT_ROOT / "platform" / "genbench").resolve() == PACKAGE_DIR


def upload_root() -> tuple[Path, str]:
    """The folder `submit` ships and the prefix its files get on the cluster: a checkout whole (the job's working_dir,
    genbench imported from platform/), else the installed package's folder (a py_module, unpacked as genbench/)."""
    return (PROJECT_ROOT, "") if from_checkout() else (PACKAGE_DIR, f"{PACKAGE_DIR.name}/")


def runtime_env(space: str, profile: Profile) -> dict[str, Any]:
    """Ship the project, or an installed genbench's package (not results, data, environments, caches or secrets);
    Ray puts a py_module first on the job's and its workers' PYTHONPATH, so the shipped genbench is what runs."""
    env_vars = {STUDY_ENV: study_text(space), CLUSTER_ENV: json.dumps(profile.record()), **profile.env}
    renv: dict[str, Any]
    if from_checkout():
        renv = {
            "working_dir": str(PROJECT_ROOT),
            "excludes": EXCLUDES,
            "env_vars": {"PYTHONPATH": "platform", **env_vars},
        }
    else:
        renv = {"py_modules": [str(PACKAGE_DIR)], "excludes": package_excludes(), "env_vars": env_vars}
    if profile.pip:
        renv["pip"] = list(profile.pip)
    check_record(renv, space)
    return renv


def check_record(renv: dict[str, Any], space: str) -> None:
    """The last look before submitting: no variable of the job's runtime environment may be a credential (a profile
    is checked when loaded; this also covers the shipped study text and profiles built in code)."""
    for name, value in renv["env_vars"].items():
        why = "its name says it holds a credential" if secret_name(name) else secret_value(value)
        if why:
            where = f"the study file {space}" if name == STUDY_ENV else f"the job's variable {name}"
            raise GenbenchError(
                f"{where}: {why}; the job's runtime environment is shown by `ray job list` and the "
                "dashboard, so submit does not send it (credentials come from the cluster's identity "
                "or the variables named in the profile's credentials_env)"
            )
    for entry in renv.get("pip", []):
        if found := uri_credentials(entry):
            raise GenbenchError(
                f"pip requirement {entry.split('@')[-1]!r}: credentials in its URI ({found}); "
                "give the cluster's nodes a pip configuration instead"
            )


def default_excludes() -> list[str]:
    """What Ray leaves out of every working_dir (.git, .venv, __pycache__, ...)."""
    from ray._private import ray_constants

    return ray_constants.get_runtime_env_default_excludes()


def package_excludes() -> list[str]:
    """EXCLUDES for the package folder shipped as a py_module: Ray's defaults, which it adds to a working_dir's only,
    and none of the repository's own folders ("/data", "/results"): in the package, genbench/data/ and
    genbench/results/ are code."""
    return default_excludes() + [p for p in EXCLUDES if not p.startswith("/")]


class _Quiet(logging.Logger):
    """Ray's packaging logs each path it fails on; genbench reports the one reason in its own line instead."""

    def __init__(self) -> None:
        super().__init__("genbench.upload", logging.CRITICAL + 1)


def upload_files(root: Path | None = None, prefix: str = "") -> list[tuple[str, int]]:
    """Every file `submit` ships (prefix + its path relative to `root`, bytes), sorted: Ray's own walk of a
    working_dir, or with a prefix of a py_module (its default excludes, .gitignore and .rayignore, then EXCLUDES or
    package_excludes()); by default of what upload_root() names. Ray follows symbolic links, so one that leads out of
    the folder is refused, as is any file holding a private key."""
    # Ray's private walk, so the listing is what ships (tests/test_submit_security.py compares it with Ray's zip).
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    root, prefix = (root, prefix) if root else upload_root()
    root = root.resolve()
    excludes = package_excludes() if prefix else default_excludes() + EXCLUDES
    gitignore = os.environ.get(ray_constants.RAY_RUNTIME_ENV_IGNORE_GITIGNORE, "0") != "1"  # as the Jobs SDK reads it
    found: list[tuple[str, int]] = []

    def visit(path: Path) -> None:
        _refuse_outside(path, root)
        if path.is_file() or (path.is_dir() and next(path.iterdir(), None) is None):  # what Ray's zip holds
            size = path.stat().st_size if path.is_file() else 0
            _refuse_private_key(path, root, size)
            found.append((prefix + str(path.relative_to(root)), size))

    _dir_travel(root, [_get_excludes(root, excludes)], visit, include_gitignore=gitignore, logger=_Quiet())
    return sorted(found)


def _refuse_outside(path: Path, root: Path) -> None:
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        raise GenbenchError(
            f"{path} is a symbolic link to {path.resolve()}, outside the repository; Ray would upload "
            "what it points to: remove the link, or add it to .rayignore"
        )


def _refuse_private_key(path: Path, root: Path, size: int) -> None:
    if 0 < size <= SCANNED_BYTES and PRIVATE_KEY.search(path.read_bytes()):
        raise GenbenchError(
            f"{path.relative_to(root)} holds a private key, which submit does not ship: move it out "
            "of the repository (the cluster's nodes keep their own credentials), or add it to "
            ".rayignore"
        )


def upload_summary(files: list[tuple[str, int]]) -> str:
    """'214 files, 3.1 MiB'."""
    total = sum(size for _, size in files)
    return f"{len(files)} files, {_size(total)}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def entrypoint(space: str, profile: Profile, out: str, dry_run: bool) -> str:
    """The job's shell command; the profile's python is left unquoted so that `$HOME/venv/bin/python` works."""
    args = ["-m", "genbench.cluster.remote", Path(space).name, "--out", out] + (["--dry-run"] if dry_run else [])
    return f"{profile.python} {shlex.join(args)}"


def submit(
    space: str, profile: Profile, address: str, dry_run: bool, out: str | None, allow_insecure: bool = False
) -> tuple[str, str]:
    """Validate the study here, then submit it; returns (job id, results URI)."""
    from genbench.sweep.spec import load_study

    study = load_study(space)  # a bad study fails here, before anything is shipped
    out = out or profile.results_uri(study.name, dry_run)
    if found := uri_credentials(out):
        raise GenbenchError(
            f"results location: credentials in the URI ({found}) would be shown in the job's record; "
            "the job reads credentials from the cluster's identity or the variables named in the "
            "profile's credentials_env"
        )
    if "://" not in out and not os.path.isabs(out):
        raise GenbenchError(
            f"results location {out!r} is relative: on a cluster it must be a path every node "
            "shares (absolute) or a URI such as s3://bucket/prefix; set `storage:` in the profile "
            "or give --out"
        )
    if "?" in out:
        raise GenbenchError(
            f"results location {out!r}: Ray Tune's storage cannot take a URI query; give the "
            "endpoint to the job instead, e.g. `env: {AWS_ENDPOINT_URL_S3: http://HOST:PORT}` "
            "in the profile"
        )
    upload_files()  # refuses links out of the repository and private keys before anything is sent
    jobs = client(address, allow_insecure)
    job_id = f"genbench-{study.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with api_errors(address):
        jobs.submit_job(
            entrypoint=entrypoint(space, profile, out, dry_run),
            submission_id=job_id,
            runtime_env=runtime_env(space, profile),
            metadata={"genbench.study": study.name, "genbench.results": out},
        )
    return job_id, out


def list_jobs(address: str, allow_insecure: bool = False) -> list[dict[str, Any]]:
    """The cluster's jobs, newest first, each as job_record gives it."""
    jobs = client(address, allow_insecure)
    with api_errors(address):
        infos = jobs.list_jobs()
    return [job_record(info) for info in sorted(infos, key=lambda i: i.start_time or 0, reverse=True)]


def job_status(address: str, job_id: str, allow_insecure: bool = False) -> dict[str, Any]:
    jobs = client(address, allow_insecure)
    with api_errors(address):
        return job_record(jobs.get_job_info(job_id))


def job_record(info: Any) -> dict[str, Any]:
    """A job as `jobs list|status` show it (and their --json prints it): id, status (Ray's: PENDING, RUNNING,
    SUCCEEDED, FAILED, STOPPED), Ray's message, start and end (ISO 8601 UTC, None before), results location."""
    return {
        "id": info.submission_id or info.job_id or "?",
        "status": str(info.status.value),
        "message": info.message or "",
        "start": _utc(info.start_time),
        "end": _utc(info.end_time),
        "results": (info.metadata or {}).get("genbench.results", ""),
    }


def _utc(ms: int | None) -> str | None:
    """Ray's milliseconds since the epoch as '2026-11-30T13:05:12Z'; None for Ray's 0 or None (not yet)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)) if ms else None


def job_logs(address: str, job_id: str, allow_insecure: bool = False) -> str:
    jobs = client(address, allow_insecure)
    with api_errors(address):
        return jobs.get_job_logs(job_id)


def follow_logs(address: str, job_id: str, write: Callable[[str], None], allow_insecure: bool = False) -> None:
    """Pass the job's log to `write` as it grows, until the job ends."""
    import asyncio

    jobs = client(address, allow_insecure)

    async def tail() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            write(chunk)

    with api_errors(address):
        asyncio.run(tail())


def stop_job(address: str, job_id: str, allow_insecure: bool = False) -> str:
    """Ask the job to stop; returns its status once it has ended (or after 30 s)."""
    jobs = client(address, allow_insecure)
    with api_errors(address):
        jobs.stop_job(job_id)
        deadline = time.monotonic() + 30
        status = str(jobs.get_job_status(job_id).value)
        while status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            status = str(jobs.get_job_status(job_id).value)
    return status
