"""Every panel of every page on generated results: traces, axis titles with units, labels; a big study builds fast."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest

from genbench.dashboards.panels import Context, Missing, render
from genbench.dashboards.site import load_context, write_dashboards
from genbench.dashboards.spec import load_pages
from synthetic_study import synthetic_study

CARTESIAN = ("scatter", "box", "bar")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("synthetic") / "results"
    synthetic_study(str(out), configs=25, seeds=3)
    return str(out)


@pytest.fixture(scope="module")
def ctx(study: str) -> Context:
    return load_context(study)


def _value_axes(fig: go.Figure) -> set[str]:
    """The axes that carry numbers (not categories): both for scatter, x for horizontal boxes, y for bars."""
    axes: set[str] = set()
    for t in fig.data:
        if t.type == "scatter":
            axes |= {"x", "y"}
        elif t.type == "box":
            axes.add("x" if t.orientation == "h" else "y")
        elif t.type == "bar":
            axes.add("x" if t.orientation == "h" else "y")
    return axes


PANELS = [(page.name, panel) for page in load_pages() for panel in page.panels]


@pytest.mark.parametrize("page,panel", PANELS, ids=[f"{n}-{p.id}" for n, p in PANELS])
def test_every_panel_has_traces_titles_units_and_labels(ctx: Context, page: str, panel: object) -> None:
    try:
        fig = render(panel, ctx)  # type: ignore[arg-type]
    except Missing as why:
        assert panel.id in ("usd", "eval-fd"), f"{panel.id}: {why}"  # type: ignore[attr-defined]  # not on toy data
        return
    assert fig.data, "no traces"
    assert fig.layout.title.text, "no title"
    for axis in _value_axes(fig):
        title = getattr(fig.layout, f"{axis}axis").title.text
        assert title and re.search(r"\(.+\)", title), f"{axis} axis title without a unit: {title!r}"
    named = [t for t in fig.data if t.type in CARTESIAN and t.showlegend is not False]
    assert all(t.name for t in named), "a trace without a label"
    if fig.data[0].type == "parcoords":
        assert all(d.label for d in fig.data[0].dimensions)


def test_rates_come_with_wilson_intervals_per_family(ctx: Context) -> None:
    from genbench.dashboards import figures
    from genbench.dashboards.stats import wilson

    fig = figures.rates(ctx.trials, ctx.trials["family"], "rates")
    completed = fig.data[0]
    assert list(completed.x) == sorted(ctx.trials["family"].unique())
    runs = ctx.trials[ctx.trials["family"] == "gan"]
    k, n = int((runs["status"] == "completed").sum()), len(runs)
    lo, hi = wilson(k, n)
    i = list(completed.x).index("gan")
    assert completed.y[i] == pytest.approx(100 * k / n)
    assert completed.y[i] - completed.error_y.arrayminus[i] == pytest.approx(100 * lo)
    assert completed.y[i] + completed.error_y.array[i] == pytest.approx(100 * hi)


def test_wilson_interval_on_known_answers() -> None:
    from genbench.dashboards.stats import wilson

    assert wilson(0, 10)[0] == 0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == 1 and wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_seed_bands_one_mean_line_and_band_per_configuration(ctx: Context) -> None:
    from genbench.dashboards import figures

    fig = figures.seed_bands(ctx.history, ctx.trials, "eval.modes", ctx.trials["family"], "bands")
    lines = [t for t in fig.data if t.fill != "toself"]
    assert sum(list(t.x).count(None) for t in lines) == ctx.trials["config_id"].nunique()
    assert {t.legendgroup for t in fig.data} == set(ctx.trials["family"])


def test_pareto_front_from_summary_is_joined(ctx: Context) -> None:
    from genbench.dashboards.spec import Panel

    fig = render(Panel("p", "pareto", "", {"x": "objective_2", "y": "objective", "group": "family"}), ctx)
    front = fig.data[-1]
    assert front.name == f"Pareto front ({len(ctx.summary['pareto_front'])})"
    assert "seed_cv" in fig.layout.xaxis.title.text and "modes" in fig.layout.yaxis.title.text


def test_family_table_measures_every_family_and_links_to_panels(study: str, ctx: Context) -> None:
    from genbench.dashboards.table import COLUMNS, family_table

    rows, _ = family_table(ctx.trials, ctx.study)
    assert [f for f, _ in rows] == ["gan", "vae", "diffusion", "autoregressive", "flow"]
    index = Path(write_dashboards(study))
    pages = {p.name: p.read_text() for p in index.parent.glob("*.html")}
    for _, cells in rows:
        assert set(cells) == set(COLUMNS)
        for cell in cells.values():
            if cell.link:
                page, anchor = cell.link.split("#")
                assert f'id="{anchor}"' in pages[page], cell.link
    gan = dict(rows)["gan"]
    assert gan["likelihood"].note == "no likelihood" and "% completed" in gan["training stability"].main()
    assert dict(rows)["flow"]["likelihood"].note == "exact" and dict(rows)["vae"]["likelihood"].note == "bound"
    assert re.search(r"NFE (10|20|50|100)$", dict(rows)["diffusion"]["inference speed"].detail())
    assert 'id="family-table"' in pages["index.html"] and "quality.html#quality-by-group" in pages["index.html"]


def test_report_prints_the_table_in_the_terminal_and_as_markdown(study: str, capsys: pytest.CaptureFixture) -> None:
    from genbench.cli import main

    assert main(["report", study]) == 0
    text = capsys.readouterr().out
    assert "training stability" in text and "samples/s" in text and "n=3 seeds" in text
    assert main(["report", study, "--markdown"]) == 0
    md = capsys.readouterr().out.splitlines()
    table = [line for line in md if line.startswith("|")]
    assert table[0] == (
        "| family | quality, best configuration | inference speed, best configuration | mode collapse, "
        "best configuration | likelihood, best configuration | quality, all completed runs | "
        "training stability, all runs | diverged or collapsed, all runs |"
    )
    assert len(table) == 2 + 5 and all(line.count("|") == 9 for line in table)


def test_report_json_holds_every_cell_of_the_table(study: str, ctx: Context, capsys: pytest.CaptureFixture) -> None:
    from genbench.cli import main
    from genbench.dashboards.table import COLUMNS, family_table, shown

    assert main(["report", study, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    rows, caption = family_table(ctx.trials, ctx.study)
    assert doc["runs"] == len(ctx.trials) and doc["caption"] == caption
    assert doc["quality_metric"]["metric"] in doc["caption"] and doc["quality_metric"]["mode"] in ("max", "min")
    assert doc["columns"] == [c.replace(" ", "_") for c in shown(rows)]
    assert [f["family"] for f in doc["families"]] == [f for f, _ in rows]
    for family, cells in zip(doc["families"], (cells for _, cells in rows)):
        for column in COLUMNS:
            cell, measured = family[column.replace(" ", "_")], cells[column]
            assert cell["text"] == measured.text() and cell["n"] == measured.n
            assert cell["value"] == (measured.value if math.isfinite(measured.value) else None)
    gan = doc["families"][0]
    assert gan["likelihood"]["value"] is None and gan["likelihood"]["note"] == "no likelihood"
    lo, hi = gan["training_stability"]["interval"]
    assert lo <= gan["training_stability"]["value"] <= hi and gan["training_stability"]["unit"] == "% completed"


def test_a_study_of_hundreds_of_runs_builds_in_seconds(tmp_path: Path) -> None:
    out = str(tmp_path / "big")
    synthetic_study(out, configs=150, seeds=3)
    load_pages()  # definitions validated once per process, as a sweep's end does
    start = time.perf_counter()
    index = Path(write_dashboards(out))
    seconds = time.perf_counter() - start
    print(f"\n450 runs (150 configurations x 3 seeds): dashboards built in {seconds:.1f} s")
    stability = (index.parent / "stability.html").read_text()
    assert stability.count('class="plotly-graph-div"') == 11 and "450: " in (index.parent / "index.html").read_text()


def test_diffusion_quality_against_sampling_steps_per_sampler(ctx: Context) -> None:
    panel = next(p for page in load_pages() for p in page.panels if p.id == "diffusion-steps")
    fig = render(panel, ctx)
    diffusion = ctx.trials[ctx.trials["family"] == "diffusion"].dropna(subset=["quality.modes"])
    assert {t.name for t in fig.data} == set(diffusion["config.diffusion.sampler"])
    assert sum(len(t.x) for t in fig.data) == len(diffusion)
    assert fig.layout.xaxis.type == "log" and "network evaluations / sample" in fig.layout.xaxis.title.text


def test_sample_panel_shows_the_best_and_median_run_of_each_group(ctx: Context) -> None:
    panel = next(p for page in load_pages() for p in page.panels if p.id == "samples")
    fig = render(panel, ctx)
    done = ctx.trials.dropna(subset=["quality.modes"])
    for family, runs in done.groupby("family"):
        ranked = runs.sort_values("quality.modes", ascending=False, kind="stable")["trial_id"].tolist()
        best, median = ranked[0], ranked[len(ranked) // 2]
        titles = [a.text for a in fig.layout.annotations if a.text.startswith(f"{family}: ")]
        assert titles == [
            f"{family}: best ({best}, modes = {runs.set_index('trial_id').loc[best, 'quality.modes']:.4g})",
            f"{family}: median ({median}, modes = {runs.set_index('trial_id').loc[median, 'quality.modes']:.4g})",
        ]
    assert len(fig.data) == 2 * done["family"].nunique()
    assert {t.name for t in fig.data} <= set(done["trial_id"])  # every cell is a run with its points


def test_sample_panel_says_so_when_no_run_has_samples(ctx: Context) -> None:
    panel = next(p for page in load_pages() for p in page.panels if p.id == "samples")
    bare = Context(ctx.trials, ctx.history, ctx.study, ctx.summary, ctx.curve)  # no sample reader
    with pytest.raises(Missing, match="no sample files"):
        render(panel, bare)


def test_sampling_speed_is_grouped_by_family_and_sampler(ctx: Context) -> None:
    panel = next(p for page in load_pages() for p in page.panels if p.id == "sampling-speed")
    fig = render(panel, ctx)
    labels = {t.name for t in fig.data}  # one box per family and sampler
    assert any(label.startswith("gan: generator pass") for label in labels)
    assert any(re.match(r"diffusion: ddim \(\d+ steps\)", label) for label in labels)
    assert any(label.startswith("diffusion: ddpm (") for label in labels)


def test_sample_panel_keeps_the_groups_with_the_best_runs(ctx: Context) -> None:
    from genbench.dashboards import panels

    panel = next(p for page in load_pages() for p in page.panels if p.id == "samples")
    old, panels.SAMPLE_GROUPS_MAX = panels.SAMPLE_GROUPS_MAX, 2
    try:
        fig = render(panel, ctx)
    finally:
        panels.SAMPLE_GROUPS_MAX = old
    best = ctx.trials.groupby("family")["quality.modes"].max()
    shown = list(dict.fromkeys(a.text.split(":")[0] for a in fig.layout.annotations))
    assert len(shown) == 2 and f"of {len(best)})" in fig.layout.title.text
    assert best[shown[0]] >= best[shown[1]] >= best.drop(shown).max()


@pytest.fixture(scope="module")
def vae_flow(tmp_path_factory: pytest.TempPathFactory) -> Context:
    """Generated results of a study of the VAE and the flow that searches optim.lr (no GAN, no diffusion)."""
    out = tmp_path_factory.mktemp("vae-flow") / "results"
    synthetic_study(str(out), configs=6, seeds=2, families=("vae", "flow"))
    return load_context(str(out))


def test_a_vae_flow_study_gets_no_panel_or_note_about_what_it_did_not_run(vae_flow: Context) -> None:
    from genbench.dashboards.site import build_page

    for page in load_pages():
        body = build_page(page, vae_flow).body
        assert not re.search(r"discriminator|\bgan\b|generator updates|diffusion|lr_g|config\.", body, re.I), page.name
        notes = re.findall(r'<p class="missing" id="([^"]+)">([^:]+):', body)
        assert all(title != panel_id for panel_id, title in notes), notes  # a note names a panel by its title
    parallel = render(next(p for pg in load_pages() for p in pg.panels if p.id == "parallel"), vae_flow)
    family = parallel.data[0].dimensions[0]
    assert family.label == "family" and list(family.ticktext) == ["flow", "vae"]


def test_the_learning_rate_panel_uses_the_rate_the_study_searches(vae_flow: Context) -> None:
    panel = next(p for pg in load_pages() for p in pg.panels if p.id == "outcome-vs-lr")
    fig = render(panel, vae_flow)
    assert fig.layout.xaxis.title.text.startswith("optim.lr") and fig.layout.xaxis.type == "log"
    assert "quality.modes" in fig.layout.yaxis.title.text and fig.layout.title.text.endswith("(quality.modes)")
    runs = vae_flow.trials
    assert sum(len(t.x) for t in fig.data) == len(runs)  # every run, those without a value at the worst one
    unmeasured = [t for t in fig.data if "no value" in t.name]
    assert sum(len(t.x) for t in unmeasured) == int(runs["quality.modes"].isna().sum())


def test_steps_are_generator_updates_only_in_a_gan_study(ctx: Context, vae_flow: Context) -> None:
    from genbench.dashboards.spec import Panel

    panel = Panel("loss", "curves", "", {"metric": "train.loss", "group": "variant"})
    assert render(panel, vae_flow).layout.xaxis.title.text == "step (training steps)"
    gan = Context(ctx.trials[ctx.trials["family"] == "gan"], ctx.history, {**ctx.study, "family": "gan"})
    panel = Panel("loss-d", "curves", "", {"metric": "train.loss_d", "group": "variant"})
    assert render(panel, gan).layout.xaxis.title.text == "training step (generator updates)"


def test_a_curve_measured_at_the_end_only_says_so(vae_flow: Context) -> None:
    from genbench.dashboards.spec import Panel

    study = {
        **vae_flow.study,
        "objectives": [{"metric": "likelihood.nll", "mode": "min"}, {"metric": "quality.modes", "mode": "max"}],
    }
    ended = Context(vae_flow.trials, vae_flow.history, study)
    panel = Panel("curve", "seed_bands", "{objective} during training", {"metric": "objective", "group": "family"})
    fig = render(panel, ended)  # the next objective's curve, and why the first one has none
    assert fig.layout.title.text.startswith("quality.modes during training")
    assert "likelihood.nll: measured at the end only" in fig.layout.title.text.replace("<br>", " ")
    only = Context(vae_flow.trials, vae_flow.history, {**study, "objectives": study["objectives"][:1]})
    with pytest.raises(Missing, match="likelihood.nll is measured at the end of each run only"):
        render(panel, only)


def test_a_metric_no_run_measures_is_left_out_but_one_not_there_yet_is_a_note(vae_flow: Context) -> None:
    from genbench.dashboards.panels import NotApplicable
    from genbench.dashboards.spec import Panel

    panel = Panel("fd", "seed_bands", "", {"metric": "eval.fd", "group": "family"})
    with pytest.raises(NotApplicable):
        render(panel, vae_flow)
    running = Context(vae_flow.trials.assign(status="failed"), vae_flow.history.iloc[0:0], vae_flow.study)
    with pytest.raises(Missing, match="no eval.fd values in these results yet") as why:
        render(panel, running)
    assert not isinstance(why.value, NotApplicable)


def test_a_family_has_one_colour_on_every_panel() -> None:
    from genbench.dashboards.style import FAMILY_COLOURS, colour_map, neutral_map

    colours = colour_map(["vae: prior -&gt; decoder pass", "flow", "hinge / r1 / SN"])
    assert colours["vae: prior -&gt; decoder pass"] == FAMILY_COLOURS["vae"]
    assert colours["flow"] == FAMILY_COLOURS["flow"]
    assert not set(neutral_map(["likelihood.bpd", "quality.fd"]).values()) & set(FAMILY_COLOURS.values())


def test_long_titles_are_wrapped_to_fit() -> None:
    from genbench.dashboards import figures

    fig = go.Figure(go.Scatter(x=[1], y=[1]))
    fig.update_layout(title="t " * 60, height=430)
    fig.update_yaxes(title="stability.best_to_final_gap (units of the quality metric; lower is better), log scale")
    fig.update_xaxes(title="short (unit)")
    figures.fit_titles(fig)
    lines = fig.layout.yaxis.title.text.split("<br>")
    assert len(lines) == 2 and max(map(len, lines)) * figures.AXIS_PX_PER_CHAR <= 430 - 40
    assert fig.layout.xaxis.title.text == "short (unit)" and "<br>" in fig.layout.title.text
