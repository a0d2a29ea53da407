"""Writes a study's dashboards as static HTML from the shipped page definitions (offline, plotly.js once)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards import table as family_table
from genbench.dashboards.context import load_context
from genbench.dashboards.panels import Context, Missing, NotApplicable, panel_name, render, study_words
from genbench.dashboards.spec import PageDef, load_pages
from genbench.dashboards.words import budget_words
from genbench.results.store import ResultsStore

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,"><script src="plotly.min.js"></script>
<style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;
max-width:1180px;padding:0 20px 40px;color:#222}}
nav{{padding:14px 0;border-bottom:1px solid #ddd;margin-bottom:10px}} nav a{{margin-right:18px;color:#0072B2}}
.panel{{margin:18px 0;border:1px solid #eee;border-radius:6px;padding:6px}} .note{{color:#555}}
.missing{{color:#777;font-size:.9em;margin:4px 0}} td,th{{padding:4px 10px;text-align:left;vertical-align:top}}
table.families{{border-collapse:collapse;margin:12px 0}} table.families td,table.families th{{border:1px solid #ddd}}
table.families caption{{caption-side:bottom;text-align:left;color:#555;font-size:.9em;padding-top:6px}}
.na{{color:#999}} table.families a{{color:#0b3d66;text-decoration:none}}
table.families a:hover{{text-decoration:underline}}</style>{live}</head>
<body><nav><b>genbench</b> &middot; {study} &nbsp; {links}</nav><h1>{heading}</h1>{body}</body></html>
"""
# Only when served: reload the page when the server has rebuilt the site (version.txt changes).
LIVE = """<script>(function(){var v=null;setInterval(function(){fetch('version.txt',{cache:'no-store'})
.then(function(r){return r.text()}).then(function(t){if(v!==null&&t!==v){location.reload()}v=t})
.catch(function(){})},3000)})();</script>"""


@dataclass
class Page:
    name: str  # file stem
    heading: str
    body: str


def _panel(fig: go.Figure, panel_id: str) -> str:
    div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=panel_id, config={"responsive": True})
    return f'<div class="panel" id="panel-{html.escape(panel_id)}">{div}</div>'


def build_page(page: PageDef, ctx: Context) -> Page:
    """One page: its panels in order; a panel the results cannot fill becomes a one-line note."""
    parts = [f'<p class="note">{html.escape(page.intro)}</p>'] if page.intro else []
    for panel in page.panels:
        try:
            parts.append(_panel(render(panel, ctx), panel.id))
        except NotApplicable:
            continue  # about a family or metric this study does not have: not a word of it on the page
        except Missing as why:
            parts.append(
                f'<p class="missing" id="{html.escape(panel.id)}">{html.escape(panel_name(panel, ctx))}: '
                f"not shown, {html.escape(str(why))}.</p>"
            )
    return Page(page.name, study_words(page.title, ctx), "\n".join(parts))


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _value(value: Any) -> str:
    return "not measured" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _keys_html(values: dict[str, Any]) -> str:
    return "<br>".join(f"<code>{html.escape(k)}</code> {html.escape(_value(v))}" for k, v in values.items())


def _entry_rows(entry: dict[str, Any], metrics: list[str], several: bool) -> str:
    """A configuration's family, trial, scores, searched keys and other non-default keys as table cells (`several`:
    the study searched the family)."""
    scores = "<br>".join(f"{html.escape(m)} {html.escape(_value(entry.get(m)))}" for m in metrics)
    seeds = f"<br><small>{entry['seeds']} seeds</small>" if entry["seeds"] > 1 else ""
    seeds += f"<br><small>not completed: {entry['status']}</small>" if entry["status"] != "completed" else ""
    return (
        f"<td>{html.escape(entry['family'])}</td><td>{html.escape(entry['config_id'])}{seeds}</td>"
        f"<td>{scores}</td><td>{_keys_html(entry['searched']) or ('the family only' if several else 'none')}</td>"
        f"<td>{_keys_html(entry['not_default']) or 'none'}</td>"
    )


def winners(ctx: Context) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The best configuration by the first objective and the Pareto front of several (best first), named as in
    summary.yaml: family, objective values, settings and every run key."""
    from genbench.results.analysis import config_entry, pareto_front, ranked, searched_keys

    objectives, table = ctx.objectives(), ctx.configs()
    metrics = [m for m, _ in objectives]
    searched = {"family": {}, **searched_keys(ctx.study.get("space") or {})}
    entry = lambda row: config_entry(row, ctx.trials, metrics, searched)  # noqa: E731
    order = ranked(table, ctx.trials, *objectives[0])
    front = set(pareto_front(table, objectives)) if len(objectives) > 1 else set()
    best = entry(order.iloc[0]) if len(order) else None
    return best, [entry(row) for _, row in order.iterrows() if row["config_id"] in front]


def winner_html(ctx: Context) -> str:
    """The best configuration and, for several objectives, the Pareto front, with their settings."""
    best, front = winners(ctx)
    if best is None:
        return "<p>No configuration has measured the objective yet.</p>"
    metrics, several = [m for m, _ in ctx.objectives()], ctx.trials["family"].nunique() > 1
    head = (
        "<tr><th>family</th><th>trial</th><th>objectives</th><th>searched settings</th>"
        "<th>other settings not at the family's default</th></tr>"
    )
    best_row = _entry_rows(best, metrics, several)
    out = f'<h2 id="best">Best configuration</h2><table class="families">{head}<tr>{best_row}</tr></table>'
    if front:
        rows = "".join(f"<tr>{_entry_rows(e, metrics, several)}</tr>" for e in front)
        out += (
            f'<h2 id="pareto-front">Pareto front: {plural(len(front), "configuration")} that no other beats on '
            f'every objective</h2><table class="families">{head}{rows}</table>'
        )
    return out


def overview_page(ctx: Context, pages: list[Page]) -> Page:
    """The index: the study in brief, its best configuration (and Pareto front), the measured family table and
    links to the pages."""
    study, trials = ctx.study, ctx.trials
    objectives = ctx.objectives()
    counts = trials["status"].value_counts().to_dict()
    versions = ", ".join(f"{k} {v}" for k, v in (study.get("versions") or {}).items())
    family = study.get("family", "")
    rows = [
        ("study", study.get("study", "")),
        ("family", ", ".join(family) if isinstance(family, list) else family),
        ("trials", f"{len(trials)}: " + ", ".join(f"{n} {s}" for s, n in counts.items())),
        (
            "objectives" if len(objectives) > 1 else "objective",
            ", ".join(f"{m} ({'lower' if d == 'min' else 'higher'} is better)" for m, d in objectives),
        ),
        ("budget", budget_words(study.get("budget"), study.get("constants"))),
        ("versions", versions),
        ("created", study.get("created", "")),
    ]
    info = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    links = "".join(f'<li><a href="{p.name}.html">{html.escape(p.heading)}</a></li>' for p in pages)
    cells, caption = family_table.family_table(trials, study)
    return Page(
        "index",
        f"Study {study.get('study', '')}",
        f"<table>{info}</table><ul>{links}</ul>{winner_html(ctx)}<h2>The families, measured</h2>"
        f"{family_table.to_html(cells, caption)}",
    )


PROVENANCE = (
    "provenance.extractor",
    "provenance.feature_dim",
    "provenance.reference",
    "provenance.n_reference",
    "provenance.n_generated",
    "provenance.kid_subsets",
    "provenance.kid_subset_size",
)


def provenances(trials: pd.DataFrame) -> pd.DataFrame:
    """The distinct ways this study's quality scores were computed, with how many runs used each."""
    columns = [c for c in PROVENANCE if c in trials]
    scored = trials[columns].dropna(how="all") if columns else trials[:0]  # a failed run scored nothing
    if not columns or scored.empty:
        return pd.DataFrame(columns=[*PROVENANCE, "runs"])
    return scored.astype(str).value_counts(dropna=False).rename("runs").reset_index()


def provenance_note(trials: pd.DataFrame) -> str:
    """A warning above every page when its scores were computed in more than one way (not comparable)."""
    kinds = provenances(trials)
    if len(kinds) <= 1:
        return ""
    return (
        f'<p class="missing">Quality scores in this study were computed {len(kinds)} ways (feature extractor, '
        "reference split or sample count differ); scores are comparable only within one way. See "
        '<a href="metrics.html">metrics</a>.</p>'
    )


def metrics_page(ctx: Context) -> Page:
    """The definition and direction of every metric the study measured, how its scores were computed, and warnings
    about them."""
    from genbench.metrics.names import METRICS
    from genbench.metrics.score_warnings import score_warnings

    trials = ctx.trials
    measured = {name: m for name, m in METRICS.items() if name in trials and trials[name].notna().any()}
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{'higher' if m.better == 'max' else 'lower'}"
        f"</td><td>{html.escape(m.doc)}</td></tr>"
        for name, m in measured.items()
    )
    kinds = provenances(ctx.trials)
    how = kinds.to_html(index=False, border=0, escape=True) if len(kinds) else "<p>No quality scores yet.</p>"
    found = score_warnings(ctx.trials)  # from the rows, so a live dashboard warns before the summary exists
    warn = (
        (
            '<h2>Warnings about these scores</h2><ul class="warnings">'
            + "".join(f'<li class="missing">{html.escape(w)}</li>' for w in found)
            + "</ul>"
        )
        if found
        else ""
    )
    return Page(
        "metrics",
        "Metrics: definitions and how this study's scores were computed",
        f'{warn}<p class="note">The metrics this study measured (<code>genbench list metrics</code> lists '
        "every one).</p>"
        f"<table><tr><th>metric</th><th>better</th><th>definition</th></tr>"
        f"{rows}</table><h2>Provenance of the scores</h2>{how}",
    )


def write_dashboards(results: str, live: bool = False, definitions: str | None = None) -> str:
    """Render the dashboards of a results directory into <results>/dashboards/; returns the index path."""
    from plotly.offline import get_plotlyjs

    ctx = load_context(results)
    pages = [build_page(p, ctx) for p in load_pages(definitions)] + [metrics_page(ctx)]
    pages.insert(0, overview_page(ctx, pages))
    note = provenance_note(ctx.trials)
    store = ResultsStore(results)
    store.fs.create_dir(store.path("dashboards"), recursive=True)
    store.write_bytes("dashboards", "plotly.min.js", get_plotlyjs().encode())
    nav = " ".join(f'<a href="{p.name}.html">{p.name}</a>' for p in pages)
    for page in pages:
        text = PAGE.format(
            title=html.escape(f"{ctx.study.get('study', '')} - {page.name}"),
            live=LIVE if live else "",
            study=html.escape(ctx.study.get("study", "")),
            links=nav,
            heading=html.escape(page.heading),
            body=note + page.body,
        )
        store.write_bytes("dashboards", f"{page.name}.html", text.encode())
    store.write_bytes("dashboards", "version.txt", str(time.time_ns()).encode())
    return store.path("dashboards", "index.html")
