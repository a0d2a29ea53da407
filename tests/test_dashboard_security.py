"""Dashboards: user strings escaped on every page, the server answers only its own Host, and binds before it builds."""

from __future__ import annotations

import http.client
import re
import socket
import threading
from pathlib import Path

import pytest

from genbench.dashboards.serve import serve
from genbench.dashboards.site import write_dashboards
from genbench.errors import GenbenchError
from synthetic_study import synthetic_study

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
RAW = re.compile(r"<script>alert|<img src=x|</script><|\\u003cscript\\u003ealert|\\u003cimg src")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study named `<script>...` whose settings, notes, errors and provenance carry markup too."""
    out = tmp_path_factory.mktemp("hostile") / "r"
    store = synthetic_study(str(out), configs=5, seeds=2)
    study = store.read_study()
    study.update(study=SCRIPT, created=SCRIPT, versions={"genbench": IMG}, space={**study["space"], IMG: {}})
    store.write_study(study)
    row = {
        "trial_id": "cbad_s0",
        "config_id": "cbad",
        "seed": 0,
        "study": SCRIPT,
        "family": "gan",
        "status": "failed",
        "error": SCRIPT,
        "config.gan.loss": IMG,
        "config.gan.penalty": SCRIPT,
        "config.optim.lr_g": 1e-3,
        "config.optim.lr_d": 1e-3,
        "quality.modes": 3.0,
        "quality.swd": 0.5,
        "provenance.extractor": SCRIPT,
        "provenance.sampler": IMG,
    }
    store.write_config("cbad", [row], [{"trial_id": "cbad_s0", "step": 100, "train.loss_d": 1.0}])
    write_dashboards(str(out))
    return out


def test_a_study_named_script_is_escaped_on_every_page(hostile: Path) -> None:
    pages = sorted((hostile / "dashboards").glob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        text = page.read_text()
        assert not RAW.search(text), (page.name, text[RAW.search(text).start() - 200 :][:400])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text.split("</title>")[0], page.name  # its <title>


def test_plotly_labels_carry_user_strings_as_text(hostile: Path) -> None:
    """Plotly draws its labels as HTML-like markup: a setting's value is escaped there too (shown, not rendered)."""
    stability = (hostile / "dashboards" / "stability.html").read_text()
    assert "&lt;img src=x" in stability  # inside the figure's JSON, which escapes < but not &


def _served(tmp_path: Path) -> tuple[threading.Thread, threading.Event, int]:
    synthetic_study(str(tmp_path), configs=2, seeds=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(str(tmp_path), port, 0.2, stop), daemon=True)
    thread.start()
    return thread, stop, port


def _status(port: int, host: str | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", "/index.html", skip_host=True)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 must not read the dashboards."""
    thread, stop, port = _served(tmp_path)
    try:
        for _ in range(300):  # until it serves
            try:
                if _status(port, f"127.0.0.1:{port}") == 200:
                    break
            except OSError:
                pass
            stop.wait(0.1)
        assert _status(port, f"localhost:{port}") == 200
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"192.0.2.1:{port}", None):
            assert _status(port, host) in (403, 421), host
    finally:
        stop.set()
        thread.join(30)


def test_a_busy_port_fails_before_the_site_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import genbench.dashboards.serve as served

    synthetic_study(str(tmp_path), configs=1, seeds=1)
    built: list[str] = []
    monkeypatch.setattr(served, "rebuild", lambda results, definitions=None: built.append(results) or "built")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(GenbenchError, match="pick another --port"):
            serve(str(tmp_path), busy.getsockname()[1], stop=threading.Event())
    assert built == []  # minutes of building a large study are not spent before the port is known to be free
