"""The site in real headless Chromium: every page loads with no console error and every plot is drawn; the pages
of a real VAE/flow dry run on image files speak only of what that study measured.

Screenshots are kept under the session's pytest temporary directory (printed with -s). The tests are skipped,
with the reason, where no Chromium is installed (set GENBENCH_CHROMIUM to use another Chrome-like browser).
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from browser import find_chromium, inspect_pages
from genbench.dashboards.site import write_dashboards
from synthetic_study import synthetic_study

pytestmark = [
    pytest.mark.skipif(
        find_chromium() is None, reason="no chromium on PATH: apt-get install chromium (CI installs it in .ci/run)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("aiohttp") is None,
        reason="aiohttp (the DevTools websocket client; it comes with ray[default]) is missing",
    ),
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
        (report,) = inspect_pages([f"http://127.0.0.1:{port}/stability.html"], settle_s=60)
    finally:
        stop.set()
        thread.join(30)
    assert report.errors == [] and report.drawn == report.graphs > 0


def test_the_checker_sees_a_broken_page(tmp_path: Path) -> None:
    """A page with a script error and an undrawn plot must fail the checks above (no false passes)."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><div class="plotly-graph-div" id="x"></div>'
        '<script>console.error("boom"); undefinedFunction();</script></body></html>'
    )
    (report,) = inspect_pages([page.as_uri()], settle_s=2)
    assert any("boom" in e for e in report.errors) and any("undefinedFunction" in e for e in report.errors)
    assert report.graphs == 1 and report.drawn == 0 and report.undrawn == ["x"]


# Words of families, metrics and settings this study does not have (it has vae, flow, likelihood and fd).
FOREIGN = re.compile(
    r"\b(gans?|discriminator|generator|modes?|mode collapse|swd|sliced wasserstein|hq_fraction|"
    r"diffusion|autoregressive|lr_g|lr_d|ddim|ddpm)\b|config\.",
    re.IGNORECASE,
)
STUDY_PAGES = ("stability.html", "quality.html", "cost.html")


@pytest.fixture(scope="session")
def image_study(image_study_results: Path) -> Path:
    """The dashboards' folder of the real VAE/flow dry run on image files (tests/conftest.py)."""
    return image_study_results / "dashboards"


def _figures(page: Path) -> dict[str, dict[str, Any]]:
    """Each panel's Plotly figure (data and layout) as written into a page, by panel id."""
    text = page.read_text()
    found = re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"responsive"', text, re.S)
    return {m.group(1): {"data": json.loads(m.group(2)), "layout": json.loads(m.group(3))} for m in found}


def _family_colours(figure: dict[str, Any]) -> set[tuple[str, str]]:
    """(family, colour) of every trace, bar or box that stands for one family's runs ('vae', 'flow: ...'), and
    ('', colour) of every other trace (statuses, objectives, the Pareto front)."""
    pairs = set()
    for trace in figure["data"]:
        colour = (trace.get("marker") or {}).get("color") or (trace.get("line") or {}).get("color")
        if isinstance(colour, list) and trace.get("type") == "bar":  # one bar per family
            pairs |= {(str(x) if str(x) in ("vae", "flow") else "", c) for x, c in zip(trace.get("x", []), colour)}
        match = re.match(r"(vae|flow)\b", str(trace.get("name") or ""))
        if isinstance(colour, str):
            pairs.add((match.group(1) if match else "", colour))
    return pairs


@pytest.fixture(scope="session")
def image_pages(image_study: Path) -> dict[str, Any]:
    """Every page of the image study loaded once in Chromium: name -> PageReport (text, drawn plots, errors)."""
    pages = sorted(image_study.glob("*.html"))
    return {Path(r.url).name: r for r in inspect_pages([p.as_uri() for p in pages])}


def _foreign(text: str) -> list[str]:
    return sorted({m.group(0).lower() for m in FOREIGN.finditer(text)})


@pytest.mark.ray
def test_an_image_study_of_the_vae_and_the_flow_shows_only_what_it_measured(
    image_study: Path, image_pages: dict[str, Any]
) -> None:
    from genbench.dashboards.spec import load_pages

    ids = {panel.id for page in load_pages() for panel in page.panels}
    for name in STUDY_PAGES:
        report = image_pages[name]
        assert report.errors == [] and report.drawn == report.graphs > 0, (name, report.errors, report.undrawn)
        assert not _foreign(report.text), f"{name} speaks of what the study did not have: {_foreign(report.text)}"
        assert "generator updates" not in report.text
        notes = [
            html.unescape(n) for n in re.findall(r'<p class="missing"[^>]*>(.*?)</p>', (image_study / name).read_text())
        ]
        assert not [n for n in notes if any(re.search(rf"(^|\W){re.escape(i)}\b", n) for i in ids)], notes
    stability, quality = image_pages["stability.html"].text, image_pages["quality.html"].text
    assert "step (training steps)" in stability and "step (training steps)" in quality
    assert "likelihood.bpd: measured at the end only" in stability  # why the objective's own curve is missing


@pytest.mark.ray
def test_the_image_study_has_a_family_axis_and_one_colour_per_family(image_study: Path) -> None:
    from genbench.dashboards.style import FAMILY_COLOURS

    parallel = _figures(image_study / "stability.html")["parallel"]["data"][0]
    axes = {d["label"]: d for d in parallel["dimensions"]}
    assert next(iter(axes)) == "family" and axes["family"]["ticktext"] == ["flow", "vae"]
    assert "optim.lr" in axes or "log10 optim.lr" in axes  # the searched key, in the study's words
    outcome = _figures(image_study / "stability.html")["outcome-vs-lr"]["layout"]
    assert outcome["xaxis"]["title"]["text"].startswith("optim.lr")
    pairs = {
        pair for name in STUDY_PAGES for fig in _figures(image_study / name).values() for pair in _family_colours(fig)
    }
    families = {pair for pair in pairs if pair[0]}
    assert families == {("vae", FAMILY_COLOURS["vae"]), ("flow", FAMILY_COLOURS["flow"])}
    others = {colour for name, colour in pairs if not name}
    assert others and not others & set(FAMILY_COLOURS.values())  # nothing else looks like a family


@pytest.mark.ray
@pytest.mark.parametrize("name", ["index.html", "metrics.html"])
def test_the_image_studys_index_and_metrics_pages_name_only_its_families_and_metrics(
    image_pages: dict[str, Any], name: str
) -> None:
    assert image_pages[name].errors == [] and not _foreign(image_pages[name].text), _foreign(image_pages[name].text)
