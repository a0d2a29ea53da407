"""genbench dashboard --serve: serves on 127.0.0.1, rebuilds when the results change, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from genbench.dashboards.serve import fingerprint, serve
from genbench.results import ResultsStore
from synthetic_study import synthetic_study


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _answers(url: str) -> bool:
    try:
        _get(url)
        return True
    except OSError:  # not listening yet
        return False


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_served_site_rebuilds_while_results_arrive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    store = ResultsStore(str(results))
    store.write_study({"study": "live", "family": "gan", "objectives": [{"metric": "quality.modes", "mode": "max"}]})
    port, stop = _free_port(), threading.Event()
    thread = threading.Thread(target=serve, args=(str(results), port, 0.2, stop))
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}/"
        _wait(lambda: _answers(base))
        assert "Waiting for results" in _get(base)  # a sweep that has not finished a trial yet
        synthetic_study(str(results), configs=3, seeds=2)  # trials arrive
        _wait(lambda: "6: " in _get(base + "index.html"))  # 3 configurations x 2 seeds
        # version.txt is written after the last page: a build seen on index.html may not have reached it yet
        _wait(lambda: _answers(base + "version.txt"))
        version = _get(base + "version.txt")
        page = _get(base + "stability.html")
        assert "version.txt" in page and 'class="plotly-graph-div"' in page  # live pages poll for rebuilds
        ResultsStore(str(results)).write_config(
            "c9999", [{"trial_id": "c9999s0", "config_id": "c9999", "family": "vae", "status": "completed"}], []
        )
        _wait(lambda: "7: " in _get(base + "index.html"))  # and one more run
        _wait(lambda: _get(base + "version.txt") != version)  # the rebuild ends by writing a new version
    finally:
        stop.set()
        thread.join(30)
    out = capsys.readouterr().out
    assert f"at http://127.0.0.1:{port}/" in out and "results changed: built" in out
    assert not thread.is_alive()


def test_fingerprint_changes_with_every_written_part(tmp_path: Path) -> None:
    synthetic_study(str(tmp_path), configs=2, seeds=1)
    before = fingerprint(str(tmp_path))
    assert len(before) == 2 * 2 + 3  # trials and history parts, summary, budget curve, study
    synthetic_study(str(tmp_path), configs=3, seeds=1)
    assert fingerprint(str(tmp_path)) != before


def test_cli_serves_prints_the_url_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    synthetic_study(str(tmp_path / "r"), configs=3, seeds=2)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genbench.cli", "dashboard", str(tmp_path / "r"), "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Serving" in line:
                break
        assert f"http://127.0.0.1:{port}/" in lines[-1], lines
        assert "families, measured" in _get(f"http://127.0.0.1:{port}/index.html")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Stopped serving." in out and "Traceback" not in out


def test_serve_refuses_a_busy_port_and_a_remote_uri(tmp_path: Path) -> None:
    from genbench.errors import GenbenchError

    synthetic_study(str(tmp_path), configs=1, seeds=1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(GenbenchError, match="pick another --port"):
            serve(str(tmp_path), busy.getsockname()[1], stop=threading.Event())
    with pytest.raises(GenbenchError, match="local results directory"):
        serve("s3://bucket/study", 0)
