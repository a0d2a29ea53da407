"""Serves a study's dashboards on 127.0.0.1 and rebuilds them while its results change (a sweep still running)."""

from __future__ import annotations

import functools
import html
import signal
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.results.store import ResultsStore

WATCHED = ("trials", "history")
WATCHED_FILES = ("summary.yaml", "budget_curve.parquet", "study.yaml")
WAITING = """<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<link rel="icon" href="data:,">
<title>genbench: waiting</title></head><body style="font-family:system-ui,sans-serif;margin:40px">
<h1>Waiting for results</h1><p>{why}</p><p>This page reloads by itself.</p></body></html>"""


class _Quiet(SimpleHTTPRequestHandler):
    """Static files without a log line per request, never cached (pages change while a sweep runs), and only to
    requests addressed to this server by name (127.0.0.1:PORT or localhost:PORT)."""

    server: ThreadingHTTPServer  # the only server it runs in (the base class types any socketserver)

    def parse_request(self) -> bool:
        # DNS rebinding: a page of evil.example whose name is made to resolve to 127.0.0.1 reaches this server
        # from the browser, but its requests still carry Host: evil.example.
        if not super().parse_request():
            return False
        port = self.server.server_port
        if allowed_host(self.headers.get("Host", ""), port):
            return True
        self.send_error(403, "Unknown Host header", f"open http://127.0.0.1:{port}/")
        return False

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def fingerprint(results: str) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime, size) of every part file and summary file: changes whenever the sweep writes."""
    root = Path(results)
    files = [
        p for d in WATCHED for p in sorted((root / d).glob("*.parquet")) if p.name.startswith(("part-", "compacted-"))
    ]
    files += [root / f for f in WATCHED_FILES if (root / f).exists()]
    out = []
    for p in files:
        try:
            st = p.stat()
        except FileNotFoundError:  # replaced between the listing and the stat
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def rebuild(results: str, definitions: str | None = None) -> str:
    """Build the live site; while there is nothing to show yet, a page that says why and reloads itself."""
    from genbench.dashboards.site import write_dashboards

    try:
        write_dashboards(results, live=True, definitions=definitions)
        return "built"
    except GenbenchError as exc:
        out = Path(results) / "dashboards"
        out.mkdir(parents=True, exist_ok=True)
        (out / "index.html").write_text(WAITING.format(why=html.escape(str(exc))))
        return f"waiting ({exc})"
    except Exception as exc:  # noqa: BLE001 - a half-written study must not stop the server; the last pages stay
        return f"not rebuilt ({type(exc).__name__}: {exc}); the previous pages stay"


def allowed_host(host: str, port: int) -> bool:
    """The Host header of a request meant for this server: 127.0.0.1 or localhost, with its port."""
    names = {f"127.0.0.1:{port}", f"localhost:{port}"} | ({"127.0.0.1", "localhost"} if port == 80 else set())
    return host.strip().lower() in names


def bind_server(directory: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `directory`, bound to 127.0.0.1 and listening, not serving yet (port 0: a free port)."""
    handler = functools.partial(_Quiet, directory=directory)
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise GenbenchError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}; pick another --port") from None


def start_server(directory: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `directory` on 127.0.0.1, serving in a daemon thread (port 0 picks a free port)."""
    server = bind_server(directory, port)
    threading.Thread(target=server.serve_forever, name="genbench-dashboard", daemon=True).start()
    return server


def _stop_on_ctrl_c() -> threading.Event:
    """An event Ctrl-C sets: the loop ends between rebuilds instead of being interrupted anywhere in one."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


def serve(
    results: str,
    port: int = 8050,
    poll_s: float = 2.0,
    stop: threading.Event | None = None,
    definitions: str | None = None,
) -> int:
    """Build, serve and rebuild on every change of the results until Ctrl-C (or `stop` is set)."""
    if "://" in results:
        raise GenbenchError(f"{results}: --serve needs a local results directory (copy it here first)")
    ResultsStore(results).read_study()  # a clear error when this is not a results directory
    server = bind_server(str(Path(results) / "dashboards"), port)  # a port in use fails now, not after the build
    serving = threading.Thread(target=server.serve_forever, name="genbench-dashboard", daemon=True)
    try:
        stop = stop or _stop_on_ctrl_c()  # before the URL is printed: Ctrl-C from then on ends the loop cleanly
        print(f"Dashboard: {rebuild(results, definitions)}", flush=True)
        serving.start()  # requests that came while it built waited in the listen queue
        print(
            f"Serving {Path(results).resolve()}/dashboards at http://127.0.0.1:{server.server_port}/ "
            "(rebuilt when the results change; Ctrl-C stops)",
            flush=True,
        )
        _follow(results, poll_s, stop, definitions)
    finally:
        if serving.is_alive():  # shutdown() waits for serve_forever, forever if it never started
            server.shutdown()
        server.server_close()
    return 0


def _follow(results: str, poll_s: float, stop: threading.Event, definitions: str | None) -> None:
    """Rebuild the site whenever the results change, until `stop` is set or Ctrl-C."""
    seen = fingerprint(results)
    try:
        while not stop.wait(poll_s):
            now = fingerprint(results)
            if now != seen:
                seen = now
                print(f"{time.strftime('%H:%M:%S')} results changed: {rebuild(results, definitions)}", flush=True)
        print("Stopped serving.", flush=True)
    except KeyboardInterrupt:  # Ctrl-C in a thread other than the main one (no handler there)
        print("Stopped serving.", flush=True)
