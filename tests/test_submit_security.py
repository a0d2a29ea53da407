"""`submit` ships code, not secrets: the upload, the job's record, credentials in URIs, and where the token goes."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from genbench.cli import main
from genbench.cluster.profiles import Profile, load_profile
from genbench.errors import ConfigError, GenbenchError
from genbench.shipped import STUDIES

ROOT = Path(__file__).resolve().parents[1]
PEM = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END " + "PRIVATE KEY-----\n"
SECRET_FILES = (
    ".env",
    ".env.production",
    "prod.env",
    "server.pem",
    "tls.key",
    "id_rsa",
    "id_ed25519.pub",
    ".netrc",
    "credentials",
    "gcp-credentials.json",
    "my-service-account.json",
    "client_secret_123.json",
    ".aws/credentials",
    ".aws/config",
    ".ssh/id_ecdsa",
    ".ssh/config",
    ".config/gcloud/adc.json",
    ".ray/auth_token",
    ".kube/config",
    ".git-credentials",
    "platform/genbench/.env",
)
DATA_FILES = (
    "results/study/trials/part-1.parquet",
    "data/images.bin",
    "data/notes.txt",
    "arrays.npy",
    "arrays.npz",
    "model.pt",
    "table.parquet",
    "platform/genbench/samples.npz",
    "wheels/torch.whl",
)
CODE_FILES = (
    "README.md",
    "pyproject.toml",
    "platform/genbench/cli.py",
    "platform/genbench/data/files.py",
    "platform/genbench/results/store.py",
    "platform/genbench/studies/s.yaml",
    "clusters/c.yaml",
)


def _repo(root: Path) -> Path:
    for name in (*SECRET_FILES, *DATA_FILES, *CODE_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"contents of {name}\n")
    return root


def _ray_zip(root: Path, tmp: Path) -> set[str]:
    """The files of the package Ray itself builds for a job's working_dir with submit's excludes."""
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import create_package

    from genbench.cluster.jobs import EXCLUDES

    package = tmp / "package.zip"
    create_package(
        str(root), package, include_gitignore=True, excludes=ray_constants.get_runtime_env_default_excludes() + EXCLUDES
    )
    return {n for n in zipfile.ZipFile(package).namelist() if not n.endswith("/")}


def test_the_upload_holds_code_not_secrets_or_data(tmp_path: Path) -> None:
    shipped = _ray_zip(_repo(tmp_path / "repo"), tmp_path)
    assert set(CODE_FILES) <= shipped
    assert not shipped & {*SECRET_FILES, *DATA_FILES}, sorted(shipped & {*SECRET_FILES, *DATA_FILES})


def test_the_upload_listing_is_what_ray_ships(tmp_path: Path) -> None:
    from genbench.cluster.jobs import upload_files, upload_summary

    root = _repo(tmp_path / "repo")
    listed = dict(upload_files(root))
    assert set(listed) == _ray_zip(root, tmp_path)
    assert listed["README.md"] == len("contents of README.md\n")
    assert upload_summary(list(listed.items())).startswith(f"{len(CODE_FILES)} files, ")


def test_ray_follows_a_link_out_of_the_repository_so_submit_refuses_it(tmp_path: Path) -> None:
    from genbench.cluster.jobs import upload_files

    root = _repo(tmp_path / "repo")
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "keys.txt").write_text("secret")
    (root / "notes").symlink_to(tmp_path / "home" / ".aws")
    assert "notes/keys.txt" in _ray_zip(root, tmp_path)  # what Ray would do with it
    with pytest.raises(GenbenchError, match="symbolic link to .*outside the repository"):
        upload_files(root)
    (root / "notes").unlink()
    (root / "inside").symlink_to(root / "platform")  # a link that stays inside is only shipped twice
    assert "inside/genbench/cli.py" in dict(upload_files(root))


def test_a_private_key_under_any_name_is_refused(tmp_path: Path) -> None:
    from genbench.cluster.jobs import upload_files

    root = _repo(tmp_path / "repo")
    (root / "platform" / "prod-1234-abcd.json").write_text(json.dumps({"type": "service_account", "private_key": PEM}))
    with pytest.raises(GenbenchError, match=r"platform/prod-1234-abcd.json holds a private key"):
        upload_files(root)


def _profile(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text("genbench:\n  name: p\n  address: http://127.0.0.1:9\n  storage: s3://bucket/studies\n" + body)
    return path


def test_show_upload_lists_every_file_and_the_total_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    profile = _profile(tmp_path, "")  # its address answers nothing: a listing must not need it
    assert main(["submit", str(STUDIES / "gan_stability.yaml"), "--cluster", str(profile), "--show-upload"]) == 0
    out = capsys.readouterr().out.splitlines()
    files = {line.split()[-1]: int(line.split()[0]) for line in out[:-1]}
    assert "platform/genbench/cli.py" in files and "tests/test_submit_security.py" in files
    assert not [f for f in files if f.startswith(("results/", ".git/", ".venv/")) or f.endswith((".parquet", ".env"))]
    assert out[-1].startswith(f"Upload: {len(files)} files, ") and "nothing was submitted" in out[-1]


@pytest.mark.parametrize(
    "body, key, why",
    [
        (
            "  env: {AWS_SECRET_ACCESS_KEY: abc}\n",
            "genbench.env.AWS_SECRET_ACCESS_KEY",
            "name says it holds a credential",
        ),
        ("  env: {AWS_ACCESS_KEY_ID: AKIAABCDEFGHIJKLMNOP}\n", "genbench.env.AWS_ACCESS_KEY_ID", "credential"),
        ("  env: {HF_TOKEN: hf_abc}\n", "genbench.env.HF_TOKEN", "credential"),
        ("  env: {DATA_URL: 'https://user:pw@data.example/x'}\n", "genbench.env.DATA_URL", "URI with credentials"),
        ("  env: {EXTRA: AKIAABCDEFGHIJKLMNOP}\n", "genbench.env.EXTRA", "access token"),
        ("  pip: ['--index-url https://TOKEN123@pypi.example/simple']\n", "genbench.pip[0]", "credentials in a URI"),
    ],
)
def test_a_secret_in_a_profile_is_refused_naming_the_key_and_the_fix(
    tmp_path: Path, body: str, key: str, why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_profile(_profile(tmp_path, body))
    message = str(refused.value)
    assert refused.value.key == key and why in message and "\n" not in message
    assert "identity" in message and str(tmp_path / "p.yaml") in message


@pytest.mark.parametrize(
    "storage",
    [
        "s3://AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMIK@bucket/studies",
        "s3://bucket/studies?access_key=a&secret_key=b",
        "gs://bucket/x?access_token=ya29.abc",
    ],
)
def test_credentials_in_a_storage_uri_are_refused(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"genbench:\n  name: p\n  storage: '{storage}'\n")
    with pytest.raises(ConfigError, match="credentials in a URI") as refused:
        load_profile(path)
    assert refused.value.key == "genbench.storage"


def test_credentials_in_a_results_uri_are_refused() -> None:
    from genbench.results.store import resolve

    for uri in ("s3://AKIAABCDEFGHIJKLMNOP:secret@bucket/x", "s3://bucket/x?secret_key=abc"):
        with pytest.raises(ConfigError, match="credentials in the results URI"):
            resolve(uri)
    resolve("s3://bucket/x?endpoint_override=127.0.0.1:9&scheme=http")  # an endpoint is no credential


def test_the_job_names_its_credentials_and_ships_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """credentials_env names what the cluster's nodes set; the runtime env holds the names, never the values."""
    from genbench.cluster.jobs import runtime_env

    value = secrets.token_hex(20)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", value)  # on the submitting machine: it stays there
    profile = load_profile(
        _profile(
            tmp_path,
            "  env: {AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000'}\n"
            "  credentials_env: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]\n",
        )
    )
    env = runtime_env(str(STUDIES / "gan_stability.yaml"), profile)
    assert value not in json.dumps(env) and env["env_vars"]["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    assert json.loads(env["env_vars"]["GENBENCH_CLUSTER"])["credentials_env"] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    built = Profile(name="code", source="", storage="s3://b", env={"DB_PASSWORD": "x"})  # not from a file
    with pytest.raises(GenbenchError, match="DB_PASSWORD: its name says it holds a credential"):
        runtime_env(str(STUDIES / "gan_stability.yaml"), built)


def test_a_job_whose_nodes_lack_a_named_credential_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from genbench.cluster.remote import check_credentials

    monkeypatch.delenv("GENBENCH_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(GenbenchError, match="nodes do not set GENBENCH_TEST_NO_SUCH_KEY"):
        check_credentials(Profile(name="p", source="", storage="", credentials_env=["GENBENCH_TEST_NO_SUCH_KEY"]))


class _Recorder(BaseHTTPRequestHandler):
    """Records the Authorization header of every request; answers 404 (no Jobs API here)."""

    seen: ClassVar[list[str | None]] = []
    redirect_to = ""

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        type(self).seen.append(self.headers.get("Authorization"))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _recording_server(host: str, redirect_to: str = "") -> ThreadingHTTPServer:
    handler = type("Handler", (_Recorder,), {"seen": [], "redirect_to": redirect_to})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _network_address() -> str:
    """This machine's address on its network (not loopback), or '' when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return ""
    return "" if address.startswith("127.") else address


def test_the_token_is_not_sent_over_plain_http_beyond_this_machine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    address = _network_address()
    if not address:
        pytest.skip("this machine has no network address to stand for another host")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-" + secrets.token_hex(8))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    server = _recording_server(address)  # a "remote" Jobs API: reached by this machine's network address
    try:
        url = f"http://{address}:{server.server_port}"
        assert main(["jobs", "list", "--address", url]) == 2
        err = capsys.readouterr().err
        assert "refusing to send Ray's token over plain http" in err and "--allow-insecure-token" in err
        assert len(err.strip().splitlines()) == 1 and server.RequestHandlerClass.seen == []  # nothing was sent
        assert main(["jobs", "list", "--address", url, "--allow-insecure-token"]) == 2  # sent, then a 404
        err = capsys.readouterr().err
        assert "warning: sending Ray's token over plain http" in err
        assert server.RequestHandlerClass.seen and server.RequestHandlerClass.seen[0].startswith("Bearer tok-")
    finally:
        server.shutdown()
        server.server_close()


def test_https_and_loopback_need_no_flag() -> None:
    from genbench.cluster.jobs import check_transport

    for url in ("https://ray.example.com", "http://127.0.0.1:8265", "http://localhost:8265", "http://[::1]:8265"):
        check_transport(url, "tok")
    check_transport("http://ray.example.com:8265", "")  # no token, nothing to leak
    with pytest.raises(GenbenchError, match="refusing"):
        check_transport("http://ray.example.com:8265", "tok")


def test_a_redirect_to_another_host_does_not_carry_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from genbench.cluster.jobs import client

    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-" + secrets.token_hex(8))
    other = _recording_server("127.0.0.1")
    first = _recording_server("127.0.0.1", redirect_to=f"http://localhost:{other.server_port}")  # another host name
    try:
        with pytest.raises(GenbenchError):
            client(f"http://127.0.0.1:{first.server_port}")
        assert first.RequestHandlerClass.seen[0].startswith("Bearer tok-")
        assert other.RequestHandlerClass.seen == [None]  # requests dropped it at the redirect
    finally:
        for server in (first, other):
            server.shutdown()
            server.server_close()


def _installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """genbench as a wheel installs it: a package folder (with caches and a stray secret beside the code) and no
    checkout around it; returns that folder."""
    import shutil

    from genbench.cluster import jobs

    package = tmp_path / "site-packages" / "genbench"
    shutil.copytree(jobs.PACKAGE_DIR, package)
    for junk in ("__pycache__/cli.cpython-311.pyc", ".env", "results/x.parquet"):
        (package / junk).parent.mkdir(parents=True, exist_ok=True)
        (package / junk).write_text("not code")
    monkeypatch.setattr(jobs, "PROJECT_ROOT", tmp_path / "site-packages")  # no platform/genbench there
    monkeypatch.setattr(jobs, "PACKAGE_DIR", package)
    return package


def test_submit_ships_a_checkout_as_the_jobs_working_dir() -> None:
    from genbench.cluster.jobs import from_checkout, runtime_env

    env = runtime_env(str(STUDIES / "gan_stability.yaml"), Profile(name="p", source="", storage="s3://b"))
    assert from_checkout() and env["working_dir"] == str(ROOT) and env["env_vars"]["PYTHONPATH"] == "platform"
    assert "py_modules" not in env


def test_an_installed_genbench_ships_its_package_as_a_py_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No checkout: the package folder travels as a Ray py_module (unpacked as genbench/, first on the job's and its
    workers' PYTHONPATH), and the listing is Ray's own zip of it: code and the shipped studies, no caches or secrets."""
    from ray._private.runtime_env.packaging import create_package

    from genbench.cluster.jobs import from_checkout, runtime_env, upload_files

    package = _installed(monkeypatch, tmp_path)
    env = runtime_env(str(STUDIES / "gan_stability.yaml"), Profile(name="p", source="", storage="s3://b"))
    assert not from_checkout() and env["py_modules"] == [str(package)]
    assert "working_dir" not in env and "PYTHONPATH" not in env["env_vars"]
    listed = dict(upload_files())
    zipped = tmp_path / "module.zip"
    create_package(str(package), zipped, include_gitignore=True, include_parent_dir=True, excludes=env["excludes"])
    assert set(listed) == {n for n in zipfile.ZipFile(zipped).namelist() if not n.endswith("/")}
    assert {
        "genbench/cli.py",
        "genbench/studies/gan_stability.yaml",
        "genbench/dashboards/definitions/cost.yaml",
    } <= set(listed)
    code = {f"genbench/{p.relative_to(package)}" for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert code <= set(listed), sorted(code - set(listed))  # genbench/data/ and genbench/results/ too
    assert not [f for f in listed if "__pycache__" in f or f.endswith((".env", ".parquet"))]


def test_show_upload_of_an_installed_genbench_lists_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _installed(monkeypatch, tmp_path)
    assert main(["submit", "gan_stability", "--cluster", str(_profile(tmp_path, "")), "--show-upload"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert {line.split()[-1] for line in out[:-1]} >= {"genbench/cli.py", "genbench/shipped.py"}
    assert out[-1].endswith("(and the study file " + str(STUDIES / "gan_stability.yaml") + "); nothing was submitted")
