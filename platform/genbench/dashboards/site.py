"""Writes a study's dashboards as static HTML that opens offline from the file system (plotly.js once)."""
from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards import figures
from genbench.errors import GenbenchError
from genbench.results.store import ResultsStore

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><script src="plotly.min.js"></script>
<style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1180px;padding:0 20px 40px;color:#222}}
nav{{padding:14px 0;border-bottom:1px solid #ddd;margin-bottom:10px}} nav a{{margin-right:18px;color:#0072B2}}
.panel{{margin:18px 0;border:1px solid #eee;border-radius:6px;padding:6px}} .note{{color:#555}}
td,th{{padding:4px 10px;text-align:left}}</style></head>
<body><nav><b>genbench</b> &middot; {study} &nbsp; {links}</nav><h1>{heading}</h1>{body}</body></html>
"""


@dataclass
class Page:
    name: str  # file stem
    heading: str
    body: str


def _panel(fig: go.Figure, panel_id: str) -> str:
    div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=panel_id, config={"responsive": True})
    return f'<div class="panel">{div}</div>'


FALLBACK_OBJECTIVES = (("quality.modes", "max"), ("likelihood.bpd", "min"), ("likelihood.nll", "min"),
                       ("cost.wall_s", "min"))


def _objective(study: dict, trials: pd.DataFrame) -> tuple[str, str]:
    """The study's first objective that the results hold; else the first measured of a fixed list."""
    for objective in study.get("objectives") or []:
        if objective["metric"] in trials:
            return objective["metric"], objective["mode"]
    return next((m, d) for m, d in FALLBACK_OBJECTIVES if m in trials)


def stability_page(trials: pd.DataFrame, history: pd.DataFrame, study: dict,
                   curve: pd.DataFrame | None = None) -> Page:
    metric, mode = _objective(study, trials)
    panels = []
    if {"config.optim.lr_g", "config.optim.lr_d"} <= set(trials):
        panels.append(_panel(figures.outcome_vs_lr(trials, metric), "outcome-vs-lr"))
    panels.append(_panel(figures.quality_by_variant(trials, metric), "quality-by-variant"))
    eval_col = f"eval.{metric.split('.', 1)[1]}"
    if eval_col in history:
        panels.append(_panel(figures.training_curves(history, trials, eval_col, f"{eval_col} during training",
                                                     figures.metric_label(metric)), "eval-curves"))
    for col, title in (("train.loss_d", "discriminator loss"), ("train.grad_norm_d", "discriminator gradient norm"),
                       ("train.loss", "training loss"), ("train.grad_norm", "gradient norm")):
        if col in history:
            panels.append(_panel(figures.training_curves(history, trials, col, f"{col}: {title} (window mean)",
                                                         col, log_y="grad_norm" in col), col.replace(".", "-")))
    if curve is not None and not curve.empty:
        panels.append(_panel(figures.budget_curve(curve), "budget-curve"))
    searched = [f"config.{k}" for k in study.get("space") or {}]
    columns = searched or [c for c in trials if c.startswith("config.gan.") or c.startswith("config.optim.lr")]
    panels.append(_panel(figures.trials_table(trials, metric, mode, columns), "trials-table"))
    return Page("stability", "Stability: which settings diverge, and what each variant reaches", "\n".join(panels))


def overview_page(trials: pd.DataFrame, study: dict, pages: list[Page]) -> Page:
    metric, mode = _objective(study, trials)
    counts = trials["status"].value_counts().to_dict()
    best = trials.sort_values(metric, ascending=mode == "min", na_position="last").iloc[0]
    versions = ", ".join(f"{k} {v}" for k, v in (study.get("versions") or {}).items())
    rows = [("study", study.get("study", "")), ("family", study.get("family", "")),
            ("trials", f"{len(trials)}: " + ", ".join(f"{n} {s}" for s, n in counts.items())),
            ("objective", f"{metric} ({mode})"), ("best", f"{best[metric]:.4g} (trial {best['trial_id']})"),
            ("budget", str(study.get("budget", ""))), ("versions", versions), ("created", study.get("created", ""))]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    links = "".join(f'<li><a href="{p.name}.html">{html.escape(p.heading)}</a></li>' for p in pages)
    return Page("index", f"Study {study.get('study', '')}", f"<table>{table}</table><ul>{links}</ul>")


def _budget_curve(store: ResultsStore) -> pd.DataFrame | None:
    """budget_curve.parquet when the sweep wrote one (a single `train` run has none)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(store.path("budget_curve.parquet"), filesystem=store.fs).to_pandas()
    except FileNotFoundError:
        return None


def write_dashboards(results: str) -> str:
    """Render the dashboards of a results directory into <results>/dashboards/; returns the index path."""
    from plotly.offline import get_plotlyjs

    store = ResultsStore(results)
    study = store.read_study()
    trials = store.read("trials").to_pandas()
    if trials.empty:
        raise GenbenchError(f"{store.path('trials')}: no trials yet; run a sweep into {results} first")
    history = store.read("history").to_pandas()
    pages = [stability_page(trials, history, study, _budget_curve(store))]
    pages.insert(0, overview_page(trials, study, pages))
    store.fs.create_dir(store.path("dashboards"), recursive=True)
    store.write_bytes("dashboards", "plotly.min.js", get_plotlyjs().encode())
    nav = " ".join(f'<a href="{p.name}.html">{p.name}</a>' for p in pages)
    for page in pages:
        text = PAGE.format(title=f"{study.get('study', '')} - {page.name}", study=html.escape(study.get("study", "")),
                           links=nav, heading=html.escape(page.heading), body=page.body)
        store.write_bytes("dashboards", f"{page.name}.html", text.encode())
    return store.path("dashboards", "index.html")
