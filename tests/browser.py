"""Loads pages in real headless Chromium over the DevTools protocol: console errors, rendered plots, screenshots."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--no-first-run",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
)
PLOTS_JS = """(() => {
  const graphs = [...document.querySelectorAll('.plotly-graph-div')];
  const drawn = graphs.filter(g => g.querySelector('.main-svg') && g._fullLayout);
  return JSON.stringify({graphs: graphs.length, drawn: drawn.length, ids: graphs.map(g => g.id),
                         undrawn: graphs.filter(g => !drawn.includes(g)).map(g => g.id),
                         titles: drawn.map(g => (g.querySelector('.gtitle') || {}).textContent || ''),
                         text: [document.body ? document.body.innerText : '',
                                ...[...document.querySelectorAll('svg text')].map(t => t.textContent)].join(' | ')});
})()"""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, or $GENBENCH_CHROMIUM; None when there is none."""
    explicit = os.environ.get("GENBENCH_CHROMIUM")
    return explicit if explicit else next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class PageReport:
    """What one page did in the browser."""

    url: str
    errors: list[str] = field(default_factory=list)
    graphs: int = 0
    drawn: int = 0
    undrawn: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    text: str = ""  # what a reader sees: the page's text and every drawn plot's (titles, axes, legends, tables)
    screenshot: str = ""
    draw_s: float = 0.0  # from navigation until every plot was drawn (or the time ran out)


class _Session:
    """One DevTools websocket: numbered commands, their replies, and every event kept for reading."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.next_id, self.replies, self.events = ws, 0, {}, []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                self.replies[data["id"]].set_result(data)
            else:
                self.events.append(data)

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.replies[self.next_id] = future
        message = {
            "id": self.next_id,
            "method": method,
            "params": params,
            **({"sessionId": session} if session else {}),
        }
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})


def _errors(events: list[dict[str, Any]], session: str) -> list[str]:
    """Console errors, uncaught exceptions and failed loads a page reported."""
    out = []
    for e in (e for e in events if e.get("sessionId") == session):
        p = e.get("params", {})
        if e["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"log ({p['entry'].get('source')}): {p['entry']['text']} {p['entry'].get('url', '')}")
    return out


async def _load(cdp: _Session, url: str, shot: Path | None, settle_s: float) -> PageReport:
    target = (await cdp.send("Target.createTarget", url="about:blank"))["targetId"]
    session = (await cdp.send("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        await cdp.send(f"{domain}.enable", session)
    start = time.monotonic()
    await cdp.send("Page.navigate", session, url=url)
    report = PageReport(url)
    for _ in range(max(1, int(settle_s * 10))):  # until every plot is drawn (or the time is up)
        await asyncio.sleep(0.1)
        loaded = any(e.get("sessionId") == session and e["method"] == "Page.loadEventFired" for e in cdp.events)
        state = json.loads((await cdp.send("Runtime.evaluate", session, expression=PLOTS_JS))["result"]["value"])
        if loaded and state["drawn"] == state["graphs"]:
            break
    report.draw_s = time.monotonic() - start
    await asyncio.sleep(0.3)  # late console errors
    report.graphs, report.drawn, report.undrawn, report.titles = (
        state["graphs"],
        state["drawn"],
        state["undrawn"],
        state["titles"],
    )
    report.text = state["text"]
    report.errors = _errors(cdp.events, session)
    if shot is not None:
        report.screenshot = str(await _screenshot(cdp, session, shot))
    await cdp.send("Target.closeTarget", targetId=target)
    return report


async def _screenshot(cdp: _Session, session: str, path: Path) -> Path:
    size = (await cdp.send("Page.getLayoutMetrics", session))["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000), "scale": 1}
    data = await cdp.send("Page.captureScreenshot", session, format="png", clip=clip, captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(data["data"]))
    return path


async def _inspect(chromium: str, urls: list[str], shots: Path | None, settle_s: float) -> list[PageReport]:
    import aiohttp

    # Chromium's helpers (renderers, GPU, zygote) write into the profile until they exit: they share its process
    # group (a session of its own), which _stop ends whole before the folder is removed
    with tempfile.TemporaryDirectory(prefix="genbench-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            ws_url = await asyncio.wait_for(asyncio.to_thread(_devtools_url, proc), 60)
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
                cdp = _Session(ws)
                return [await _load(cdp, url, shots / f"{_stem(url)}.png" if shots else None, settle_s) for url in urls]
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[str], wait_s: float = 10.0) -> None:
    """End Chromium and every process of its group: SIGTERM, then SIGKILL for whatever is left after wait_s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.05)
        proc.poll()  # reap the leader: a zombie would keep the group alive
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(wait_s)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: a container's init may never reap them."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _devtools_url(proc: subprocess.Popen[str]) -> str:
    for line in proc.stderr:  # type: ignore[union-attr]
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
    raise RuntimeError(f"chromium exited ({proc.wait()}) before it opened the DevTools port")


def _stem(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")) or "page"


def inspect_pages(
    urls: list[str], screenshots: str | Path | None = None, settle_s: float = 30.0, chromium: str | None = None
) -> list[PageReport]:
    """Load each URL in one headless Chromium; report console errors, drawn plots, and a full-page screenshot."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise RuntimeError("no chromium on PATH (install it, or set GENBENCH_CHROMIUM)")
    shots = Path(screenshots) if screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_inspect(chromium, urls, shots, settle_s))
