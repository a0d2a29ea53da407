"""The site in real headless Chromium: every page loads with no console error and every plot is drawn.

Screenshots are kept under the session's pytest temporary directory (printed with -s). The tests are skipped,
with the reason, where no Chromium is installed (set GENBENCH_CHROMIUM to use another Chrome-like browser).
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from genbench.dashboards.browser import find_chromium, inspect_pages
from genbench.dashboards.site import write_dashboards
from genbench.dashboards.synthetic import synthetic_study

pytestmark = [
    pytest.mark.skipif(find_chromium() is None,
                       reason="no chromium on PATH: apt-get install chromium (CI installs it in .ci/run)"),
    pytest.mark.skipif(importlib.util.find_spec("aiohttp") is None,
                       reason="aiohttp (the DevTools websocket client; it comes with ray[default]) is missing"),
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-screenshots")
    print(f"\nscreenshots: {path}")
    return path


def _site(tmp_path: Path, **kwargs: int) -> Path:
    out = tmp_path / "results"
    synthetic_study(str(out), **kwargs)
    return Path(write_dashboards(str(out))).parent


def test_every_page_loads_without_errors_and_draws_every_plot(tmp_path: Path, shots: Path) -> None:
    site = _site(tmp_path, configs=20, seeds=2)
    pages = sorted(site.glob("*.html"))
    reports = inspect_pages([p.as_uri() for p in pages], shots / "synthetic")
    assert [Path(r.url).name for r in reports] == [p.name for p in pages]
    for report, page in zip(reports, pages):
        assert report.errors == [], f"{page.name}: {report.errors}"
        expected = page.read_text().count('class="plotly-graph-div"')
        assert report.graphs == expected and report.drawn == expected, (page.name, report.undrawn)
        assert Path(report.screenshot).stat().st_size > 10_000
    drawn = {Path(r.url).name: r.drawn for r in reports}
    assert drawn["index.html"] == 0 and min(drawn[p] for p in ("stability.html", "quality.html", "cost.html")) >= 5
    titles = [t for r in reports for t in r.titles]
    assert all(titles) and any("Wilson" in t or "completed" in t for t in titles)


def test_a_single_gan_run_site_also_renders(tmp_path: Path, shots: Path) -> None:
    site = _site(tmp_path, configs=1, seeds=1, families=("gan",))
    reports = inspect_pages([p.as_uri() for p in sorted(site.glob("*.html"))], shots / "one-run")
    assert all(r.errors == [] and r.drawn == r.graphs for r in reports), [(r.url, r.errors, r.undrawn) for r in reports]


def test_pages_of_hundreds_of_runs_draw_in_the_browser(tmp_path: Path, shots: Path) -> None:
    site = _site(tmp_path, configs=150, seeds=3)
    reports = inspect_pages([p.as_uri() for p in sorted(site.glob("*.html"))], shots / "450-runs", settle_s=120)
    for r in reports:
        size = Path(r.url.removeprefix("file://")).stat().st_size
        print(f"450 runs: {Path(r.url).name}: {size / 1e3:.0f} kB, {r.drawn} plots drawn in {r.draw_s:.1f} s")
        assert r.errors == [] and r.drawn == r.graphs, (r.url, r.errors, r.undrawn)


def test_the_served_site_loads_without_errors(tmp_path: Path) -> None:
    import socket
    import threading

    from genbench.dashboards.serve import serve

    synthetic_study(str(tmp_path / "results"), configs=3, seeds=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(str(tmp_path / "results"), port, 0.5, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server listens once the first build is written
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        report, = inspect_pages([f"http://127.0.0.1:{port}/stability.html"], settle_s=60)
    finally:
        stop.set()
        thread.join(30)
    assert report.errors == [] and report.drawn == report.graphs > 0


def test_the_checker_sees_a_broken_page(tmp_path: Path) -> None:
    """A page with a script error and an undrawn plot must fail the checks above (no false passes)."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><div class="plotly-graph-div" id="x"></div>'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    report, = inspect_pages([page.as_uri()], settle_s=2)
    assert any("boom" in e for e in report.errors) and any("undefinedFunction" in e for e in report.errors)
    assert report.graphs == 1 and report.drawn == 0 and report.undrawn == ["x"]
