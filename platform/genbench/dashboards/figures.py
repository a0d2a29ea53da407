"""Dashboard figures of a study: pure functions from results tables (pandas) to Plotly figures."""

from __future__ import annotations

import html
import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards.stats import wilson
from genbench.dashboards.style import (
    FAMILY_COLOURS,
    LAYOUT,
    NEUTRAL,
    OKABE_ITO,
    STATUS_COLOURS,
    STATUS_SYMBOLS,
    colour_map,
    family_of,
    neutral_map,
    unit,
)
from genbench.metrics.names import METRICS

VARIANT_KEYS = ("config.gan.loss", "config.gan.penalty", "config.gan.spectral_norm")
STEPS = "step (training steps)"  # a GAN-only study says "training step (generator updates)"
AXIS_PX_PER_CHAR = 6.6  # at the page font (13 px); an axis title may run into the margins, not past the figure
TITLE_CHARS = 88  # a figure title longer than this runs under the toolbar on a 1,180 px page (measured in Chromium)


def metric_label(metric: str) -> str:
    """'quality.modes (modes covered; higher is better)': the column, its unit and its better direction."""
    better = METRICS[metric].better if metric in METRICS else ""
    if metric.startswith("eval."):
        twin = f"quality.{metric.split('.', 1)[1]}"
        better = METRICS[twin].better if twin in METRICS else ""
    arrow = {"max": "; higher is better", "min": "; lower is better"}.get(better, "")
    return f"{metric.removeprefix('config.')} ({unit(metric)}{arrow})"


def plain(text: Any) -> str:
    """User text (a setting's value, a note) as a Plotly label: Plotly draws labels as HTML-like markup (<b>, <a
    href>), so <, > and & are escaped and the text is shown as written, never rendered."""
    return html.escape(str(text), quote=False)


def variant_labels(trials: pd.DataFrame) -> pd.Series:
    """'loss / penalty / SN' per GAN trial, from the GAN variant columns present; the family for other rows.
    Labels are plain() text: they come from the study's settings."""
    keys = [k for k in VARIANT_KEYS if k in trials]
    if not keys:
        return pd.Series(trials["family"], index=trials.index).map(plain)

    def label(row: pd.Series) -> str:
        if row.get("family", "gan") != "gan":
            return str(row["family"])
        parts = [str(row[k]) for k in keys if k != "config.gan.spectral_norm"]
        if "config.gan.spectral_norm" in keys:
            parts.append("SN" if bool(row["config.gan.spectral_norm"]) else "no SN")
        return plain(" / ".join(parts))

    return trials.apply(label, axis=1)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def _hover(trials: pd.DataFrame, metric: str, groups: pd.Series | None = None) -> list[str]:
    groups = variant_labels(trials) if groups is None else groups
    return [
        f"trial {t}<br>{v}<br>status: {s}<br>{metric}: {_fmt(m)}"
        for t, v, s, m in zip(trials["trial_id"], groups, trials["status"], trials[metric])
    ]


GL_POINTS = 1000  # above this many points a scatter is drawn with WebGL (Scattergl): SVG markers make pages crawl
BOX_POINTS_MAX = 2000  # above this many runs a box plot shows its outliers only, not every run as a point
TABLE_ROWS = 200  # rows of the trials table: the best; the results hold every one


def _points(n: int) -> Any:
    """The trace type of a scatter of n points: SVG for a few hundred, WebGL for thousands."""
    return go.Scattergl if n > GL_POINTS else go.Scatter


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    fig.update_layout(title=title, **{**LAYOUT, **extra})
    return fig


def outcome_vs_lr(
    trials: pd.DataFrame, metric: str, x: str = "config.optim.lr_g", y: str = "config.optim.lr_d"
) -> go.Figure:
    """Every trial at its (lr_g, lr_d): colour is the objective, symbol and outline the outcome."""
    fig = go.Figure()
    for status, group in trials.groupby("status", sort=False):
        marker = dict(size=12, symbol=STATUS_SYMBOLS.get(status, "circle"), line=dict(width=1, color="#333"))
        if status == "completed":
            marker.update(
                color=group[metric].astype(float),
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(title=metric.split(".")[-1]),
                cmin=trials[metric].min(),
                cmax=trials[metric].max(),
            )
        else:
            marker.update(color=STATUS_COLOURS.get(status, "#7F7F7F"), size=13)
        fig.add_trace(
            _points(len(trials))(
                x=group[x],
                y=group[y],
                mode="markers",
                name=f"{status} ({len(group)})",
                marker=marker,
                text=_hover(group, metric),
                hoverinfo="text",
            )
        )
    _layout(
        fig,
        f"Outcome of every trial against its learning rates (colour: {metric})",
        legend=dict(orientation="h", y=-0.2),
    )
    fig.update_xaxes(type="log", title=f"{x.removeprefix('config.')} ({unit(x)}, log scale)")
    fig.update_yaxes(type="log", title=f"{y.removeprefix('config.')} ({unit(y)}, log scale)")
    return fig


def by_group(trials: pd.DataFrame, metric: str, groups: pd.Series, title: str, log: bool = False) -> go.Figure:
    """Distribution of a final value per group (one row each, every run a point); diverged runs counted."""
    trials = trials.assign(_group=groups.astype(str).values)
    order = trials.groupby("_group")[metric].median().sort_values(ascending=True, na_position="first").index
    colours = colour_map(list(order))
    fig = go.Figure()
    for name in order:
        part = trials[trials["_group"] == name]
        diverged = int((part["status"] == "diverged").sum())
        fig.add_trace(
            go.Box(
                x=part[metric].astype(float),
                name=f"{name} (n={len(part)}, {diverged} diverged)",
                orientation="h",
                boxpoints="all" if len(trials) <= BOX_POINTS_MAX else "outliers",
                jitter=0.4,
                pointpos=0,
                showlegend=False,
                marker_color=colours[name],
                text=_hover(part, metric, part["_group"]) if len(trials) <= BOX_POINTS_MAX else None,
                hoverinfo="text+x" if len(trials) <= BOX_POINTS_MAX else "x",
            )
        )
    width = max((len(str(n)) for n in order), default=10)
    _layout(fig, title, height=160 + 34 * len(order), margin=dict(l=min(60 + 8 * width, 380), r=30, t=60, b=60))
    fig.update_xaxes(title=metric_label(metric) + (", log scale" if log else ""), type="log" if log else "linear")
    fig.update_yaxes(title="")
    return fig


def quality_by_variant(trials: pd.DataFrame, metric: str) -> go.Figure:
    """Distribution of the final objective per GAN variant (loss / penalty / spectral norm)."""
    return by_group(
        trials, metric, variant_labels(trials), f"Final {metric} per variant (loss / penalty / spectral norm)"
    )


def rates(trials: pd.DataFrame, groups: pd.Series, title: str) -> go.Figure:
    """Share of runs that diverged and that completed, per group, with 95% Wilson intervals."""
    labels = groups.astype(str).values
    names = sorted(set(labels))
    fig = go.Figure()
    for status, colour, label in (
        ("completed", NEUTRAL[0], "completed (success rate)"),  # no family's colour
        ("diverged", STATUS_COLOURS["diverged"], "diverged"),
    ):
        shares, lows, highs, texts = [], [], [], []
        for name in names:
            part = trials["status"].values[labels == name]
            k, n = int((part == status).sum()), len(part)
            lo, hi = wilson(k, n)
            shares.append(100 * k / n)
            lows.append(100 * (k / n - lo))
            highs.append(100 * (hi - k / n))
            texts.append(f"{k}/{n} runs; 95% interval {100 * lo:.0f}-{100 * hi:.0f}%")
        fig.add_trace(
            go.Bar(
                x=names,
                y=shares,
                name=label,
                marker_color=colour,
                hovertext=texts,
                error_y=dict(type="data", symmetric=False, array=highs, arrayminus=lows),
            )
        )
    _layout(fig, title, barmode="group", legend=dict(orientation="h", y=1.08))
    fig.update_xaxes(title="", automargin=True)
    fig.update_yaxes(title="runs (%, 95% Wilson interval)", range=[0, 105])
    return fig


def _joined(frame: pd.DataFrame, key: str, x: str, y: str, label: str) -> tuple[list[Any], list[Any], list[Any]]:
    """Lines (rows in order, one line per value of `key`) as one trace: x, y and text with a None gap between lines."""
    keys = frame[key].to_numpy()
    bounds = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    return tuple(
        np.insert(frame[c].to_numpy(dtype=object), bounds, None).tolist()  # type: ignore[call-overload]
        for c in (x, y, label)
    )


def training_curves(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    column: str,
    title: str,
    y_title: str,
    log_y: bool = False,
    groups: pd.Series | None = None,
    steps: str = STEPS,
    keep: set[str] | None = None,
) -> go.Figure:
    """One line per trial of a history column over steps, coloured by group; diverged trials dashed.

    The lines of a group and outcome share one trace (separated by gaps), so hundreds of trials stay fast.
    `keep`: the trials drawn as lines (the best of a large study); the others become one median and 10-90% band.
    """
    labels = variant_labels(trials) if groups is None else groups.astype(str)
    meta = pd.DataFrame(
        {"trial_id": trials["trial_id"].values, "group": labels.values, "status": trials["status"].values}
    )
    rows = history[["trial_id", "step", column]].dropna() if column in history else history.iloc[0:0]
    rows = rows.merge(meta, on="trial_id").sort_values(["trial_id", "step"])
    fig = go.Figure()
    if keep is not None:
        rest = rows[~rows["trial_id"].isin(keep)]
        add_band(fig, rest, column, "step", f"the other {_count(rest['trial_id'].nunique(), 'trial')}")
        rows = rows[rows["trial_id"].isin(keep)]
    rows["label"] = "trial " + rows["trial_id"].astype(str) + " (" + rows["status"].astype(str) + ")"
    colours = colour_map(list(meta["group"]))
    for (name, diverged), part in rows.groupby(["group", rows["status"] == "diverged"], sort=True):
        lines = part["trial_id"].nunique()
        xs, ys, texts = _joined(part, "trial_id", "step", column, "label")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                connectgaps=False,
                line=dict(color=colours[name], dash="dash" if diverged else "solid", width=1.5),
                name=f"{name}, diverged ({lines})" if diverged else f"{name} ({lines})",
                legendgroup=name,
                hovertext=texts,
                hoverinfo="text+x+y",
            )
        )
    _layout(fig, title)
    fig.update_xaxes(title=steps)
    fig.update_yaxes(title=y_title + (", log scale" if log_y else ""), type="log" if log_y else "linear")
    return fig


def seed_bands(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    column: str,
    groups: pd.Series,
    title: str,
    log_y: bool = False,
    steps: str = STEPS,
    keep: set[str] | None = None,
) -> go.Figure:
    """Per configuration (config_id): the mean over its seeds of a history column and a min-max band, by group.

    `keep`: the configurations drawn (the best of a large study); the others become one median and 10-90% band.
    """
    config = trials["config_id"] if "config_id" in trials else trials["trial_id"]
    meta = pd.DataFrame(
        {"trial_id": trials["trial_id"].values, "config_id": config.values, "group": groups.astype(str).values}
    )
    rows = history[["trial_id", "step", column]].dropna().merge(meta, on="trial_id")
    stats = rows.groupby(["group", "config_id", "step"])[column].agg(["mean", "min", "max", "count"]).reset_index()
    fig = go.Figure()
    if keep is not None:
        rest = stats[~stats["config_id"].isin(keep)]
        add_band(fig, rest, "mean", "step", f"the other {_count(rest['config_id'].nunique(), 'configuration')}")
        stats = stats[stats["config_id"].isin(keep)]
    stats["label"] = "configuration " + stats["config_id"].astype(str) + " (" + stats["count"].astype(str) + " seeds)"
    colours = colour_map(list(meta["group"]))
    for name, part in stats.groupby("group", sort=True):
        part = part.sort_values(["config_id", "step"])
        banded = part[part.groupby("config_id")["count"].transform("max") > 1]
        if len(banded):
            xs, ys, _ = _joined(_outline(banded), "config_id", "step", "v", "config_id")
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    fill="toself",
                    fillcolor=_rgba(colours[name], 0.15),
                    line=dict(width=0),
                    hoverinfo="skip",
                    name=f"{name}: min-max over seeds",
                    legendgroup=name,
                    showlegend=False,
                )
            )
        xs, ys, texts = _joined(part, "config_id", "step", "mean", "label")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                connectgaps=False,
                line=dict(color=colours[name], width=1.6),
                name=f"{name} ({_count(part['config_id'].nunique(), 'configuration')})",
                legendgroup=name,
                hovertext=texts,
                hoverinfo="text+x+y",
            )
        )
    _layout(fig, title)
    fig.update_xaxes(title=steps)
    fig.update_yaxes(title=metric_label(column) + (", log scale" if log_y else ""), type="log" if log_y else "linear")
    return fig


def add_band(fig: go.Figure, rows: pd.DataFrame, column: str, x: str, name: str) -> None:
    """The median and 10-90% quantile band over steps of `rows` (the curves not drawn one by one), in grey."""
    if rows.empty:
        return
    q = rows.groupby(x)[column].quantile([0.1, 0.5, 0.9]).unstack().sort_index()  # (steps, 3)
    steps = list(q.index)
    fig.add_trace(
        go.Scatter(
            x=steps + steps[::-1],
            y=list(q[0.9]) + list(q[0.1])[::-1],
            fill="toself",
            fillcolor="rgba(127,127,127,0.2)",
            line=dict(width=0),
            hoverinfo="skip",
            name=f"{name}: 10-90% band",
        )
    )
    fig.add_trace(
        go.Scatter(x=steps, y=list(q[0.5]), mode="lines", line=dict(color="#7F7F7F", width=2), name=f"{name}: median")
    )


def top_ids(trials: pd.DataFrame, metric: str, mode: str, key: str, k: int) -> set[str] | None:
    """The `key` values (trial or configuration ids) of the k best rows by `metric` (unmeasured last); None when
    there are no more than k of them (every one is drawn)."""
    ids = trials[key].astype(str)
    if ids.nunique() <= k:
        return None
    best = trials.assign(_id=ids).groupby("_id")[metric].max() if mode == "max" else None
    if best is None:
        best = trials.assign(_id=ids).groupby("_id")[metric].min()
    return set(best.sort_values(ascending=mode == "min", na_position="last").index[:k])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _outline(stats: pd.DataFrame) -> pd.DataFrame:
    """Each configuration's band as a closed polygon: its max over steps forward, then its min backward."""
    forward = stats.assign(v=stats["max"], order=stats["step"])
    backward = stats.assign(v=stats["min"], order=-stats["step"] + 10**12)
    return pd.concat([forward, backward]).sort_values(["config_id", "order"], kind="stable")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def scatter(
    trials: pd.DataFrame, x: str, y: str, groups: pd.Series, title: str, log_x: bool = False, log_y: bool = False
) -> go.Figure:
    """One point per run at (x, y), coloured by group, symbol by outcome."""
    labels = groups.astype(str).values
    colours = colour_map(list(labels))
    fig = go.Figure()
    for name in sorted(set(labels)):
        part = trials[labels == name]
        fig.add_trace(
            _points(len(trials))(
                x=part[x].astype(float),
                y=part[y].astype(float),
                mode="markers",
                name=name,
                marker=dict(
                    size=10,
                    color=colours[name],
                    line=dict(width=1, color="#333"),
                    symbol=[STATUS_SYMBOLS.get(s, "circle") for s in part["status"]],
                ),
                text=_hover(part, y, part.assign(_g=name)["_g"]),
                hoverinfo="text+x",
            )
        )
    _layout(fig, title)
    fig.update_xaxes(title=metric_label(x) + (", log scale" if log_x else ""), type="log" if log_x else "linear")
    fig.update_yaxes(title=metric_label(y) + (", log scale" if log_y else ""), type="log" if log_y else "linear")
    return fig


def _dimension(values: pd.Series, name: str) -> dict[str, Any]:
    """A parallel-coordinates axis: log10 for learning rates and weights, ticks for choices."""
    if values.dtype == object or values.dtype == bool or str(values.dtype) in ("string", "str"):
        cats = sorted({str(v) for v in values})
        codes = [cats.index(str(v)) for v in values]
        return dict(label=name, values=codes, tickvals=list(range(len(cats))), ticktext=[plain(c) for c in cats])
    numbers = values.astype(float)
    positive = numbers.dropna()
    if len(positive) and (positive > 0).all() and positive.max() / positive.min() > 50:
        return dict(label=f"log10 {name}", values=np.log10(numbers).fillna(np.nanmin(np.log10(positive)) - 1))
    return dict(label=name, values=numbers.fillna(numbers.min() if len(positive) else 0))


def parallel(trials: pd.DataFrame, params: list[str], metric: str) -> go.Figure:
    """Parallel coordinates from the searched settings to the outcome, lines coloured by the objective."""
    dims = [_dimension(trials[p], p.removeprefix("config.")) for p in params]
    outcome = trials[metric].astype(float)
    dims.append(dict(label=f"{metric} ({unit(metric)})", values=outcome))
    line = dict(
        color=outcome.fillna(outcome.min() if outcome.notna().any() else 0),
        colorscale="Viridis",
        showscale=True,
        colorbar=dict(title=metric.split(".")[-1]),
    )
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, labelangle=-20))
    return _layout(
        fig,
        f"From settings to {metric}: every run one line (unmeasured outcomes at the minimum)",
        margin=dict(l=80, r=60, t=110, b=40),
    )


IMPORTANCE_AXES = {  # what each evaluator's normalised score is a share of
    "PED-ANOVA": "importance (share of how far the best trials' settings differ from all trials', 0-1)",
    "fANOVA": "importance (share of the objective's variance, 0-1)",
}


def importances(table: pd.DataFrame, method: str) -> go.Figure:
    """Importance of each searched setting by `method` (PED-ANOVA, or fANOVA in older results), one bar group per
    objective (table: metric, param, importance)."""
    fig = go.Figure()
    colours = neutral_map(list(table["metric"]))  # objectives, not families: no family's colour
    for metric, part in table.groupby("metric", sort=False):
        part = part.sort_values("importance")
        fig.add_trace(
            go.Bar(
                x=part["importance"],
                y=part["param"].map(plain),
                orientation="h",
                name=metric,
                marker_color=colours[metric],
            )
        )
    _layout(
        fig,
        f"Hyperparameter importance ({method} over the finished trials)",
        barmode="group",
        height=160 + 28 * max(table["param"].nunique(), 3),
        margin=dict(l=180, r=30, t=60, b=60),
    )
    fig.update_xaxes(title=IMPORTANCE_AXES.get(method, "importance (0-1)"), range=[0, 1])
    fig.update_yaxes(title="")
    return fig


def pareto(configs: pd.DataFrame, x: str, y: str, front: list[str], groups: pd.Series, title: str = "") -> go.Figure:
    """Configurations at (x, y) over their seeds; the Pareto front highlighted and joined."""
    title = title or f"{y} against {x}: configurations (mean over seeds), Pareto front joined"
    fig = scatter(configs.assign(trial_id=configs["config_id"]), x, y, groups, title)
    on_front = configs[configs["config_id"].astype(str).isin(front)].sort_values(x)
    fig.add_trace(
        go.Scatter(  # the front: a handful of points
            x=on_front[x],
            y=on_front[y],
            mode="lines+markers",
            name=f"Pareto front ({len(on_front)})",
            line=dict(color="#000000", width=2, dash="dot"),
            marker=dict(size=16, symbol="circle-open", color="#000000", line=dict(width=2)),
        )
    )
    return fig


def totals(
    trials: pd.DataFrame, column: str, groups: pd.Series, title: str, scale: float, unit_label: str
) -> go.Figure:
    """The sum of a cost column per group (device-hours per family), with the number of runs in the label."""
    labels = groups.astype(str)
    sums = trials[column].astype(float).groupby(labels.values).sum() * scale
    counts = labels.value_counts()
    colours = colour_map(list(sums.index))
    fig = go.Figure(
        go.Bar(
            x=list(sums.index),
            y=list(sums.values),
            name=unit_label,
            marker_color=[colours[n] for n in sums.index],
            text=[f"{v:.3g} ({counts[n]} runs)" for n, v in sums.items()],
            textposition="outside",
        )
    )
    _layout(fig, title)
    fig.update_xaxes(title="")
    fig.update_yaxes(title=unit_label)
    return fig


def early_stopping(savings: dict[str, float]) -> go.Figure:
    """Shares of the budgeted steps and of the device time that runs ended early (scheduler, divergence) spent/saved."""
    budgeted = float(savings.get("steps_budgeted", 0)) or math.nan
    steps_saved = float(savings.get("steps_saved", 0))
    spent_s = float(savings.get("device_s_spent") or math.nan)
    saved_s = float(savings.get("device_s_saved_est") or 0)
    kinds = ["training steps", "device-seconds (saved: an estimate)"]
    spent = [100 * (1 - steps_saved / budgeted), 100 * spent_s / (spent_s + saved_s)]
    saved = [100 - v for v in spent]
    texts = [
        (f"{budgeted - steps_saved:,.0f} of {budgeted:,.0f} steps", f"{spent_s:,.1f} device-s"),
        (f"{steps_saved:,.0f} steps", f"~{saved_s:,.1f} device-s"),
    ]
    fig = go.Figure()
    runs = int(savings.get("runs_stopped", 0))
    for name, values, text, colour in (
        ("spent", spent, texts[0], NEUTRAL[0]),  # greys: no family's colour
        (f"saved by early stopping ({runs} runs ended early)", saved, texts[1], NEUTRAL[1]),
    ):
        fig.add_trace(go.Bar(x=kinds, y=values, name=name, marker_color=colour, text=list(text), textposition="inside"))
    _layout(fig, "Compute spent and saved by early stopping", barmode="stack", legend=dict(orientation="h", y=1.08))
    fig.update_xaxes(title="")
    fig.update_yaxes(title="share of the budget (%)", range=[0, 100])
    return fig


def trials_table(trials: pd.DataFrame, metric: str, mode: str, columns: list[str]) -> go.Figure:
    """The trials sorted best first by the objective, with their variant settings and outcome."""
    ordered = trials.sort_values(metric, ascending=mode == "min", na_position="last")
    title = f"Trials, best {metric} first" + (
        f" (the {TABLE_ROWS} best of {len(ordered):,})" if len(ordered) > TABLE_ROWS else ""
    )
    ordered = ordered.head(TABLE_ROWS)
    shown = [c for c in dict.fromkeys(["trial_id", "status", metric, *columns, "cost.wall_s", "error"]) if c in ordered]
    values = [[plain(_fmt(v)) for v in ordered[c]] for c in shown]  # errors and settings: user text
    fig = go.Figure(
        go.Table(
            header=dict(values=[c.removeprefix("config.") for c in shown], fill_color="#E8EEF4", align="left"),
            cells=dict(values=values, align="left", height=24),
        )
    )
    return _layout(fig, title, height=180 + 24 * min(len(ordered), 20))


def budget_curve(curve: pd.DataFrame) -> go.Figure:
    """Expected best objective against the number of trials, per variant or family (equal tuning budgets)."""
    metric = str(curve["metric"].iloc[0])
    fig = go.Figure()
    values = [v for v in dict.fromkeys(curve["value"]) if v != "all"]
    colours = colour_map(values)
    compute = "compute" in curve  # a compute budget: n trials cost the same device-seconds in every family
    units = {"device_s": "device-seconds", "flops": "FLOPs"}
    unit = units.get(str(curve["compute_unit"].iloc[0]), "") if compute and len(curve) else ""
    for value in ["all", *values]:
        part = curve[curve["value"] == value]
        fig.add_trace(
            go.Scatter(
                x=part["trials"],
                y=part["expected_best"],
                customdata=part["compute"] if compute else None,
                hovertemplate=f"%{{x}} trials = %{{customdata:,.4g}} {unit}<br>%{{y:.4g}}<extra></extra>"
                if compute
                else None,
                mode="lines+markers",
                name="every trial" if value == "all" else plain(value),
                line=dict(
                    color="#555555" if value == "all" else colours[value], dash="dash" if value == "all" else "solid"
                ),
            )
        )
    group = next((g for g in curve["group"] if g != "all"), "")
    _layout(fig, f"Expected best {metric} after n trials" + (f", per {group}" if group else ""))
    per_trial = f"; each trial {curve['compute'].iloc[0]:,.4g} {unit}" if compute and len(curve) else ""
    fig.update_xaxes(title=f"trials (random subsets of the ones run){per_trial}")
    fig.update_yaxes(title=metric_label(metric))
    return fig


class SampleShot(NamedTuple):
    """One trial's sample file, shown in a grid cell: 'best' or 'median' of its group by the panel's metric."""

    group: str
    rank: str
    trial_id: str
    score: str  # e.g. 'quality.modes = 20'
    ext: str  # png | npy
    data: bytes


def sample_grids(shots: list[SampleShot], title: str) -> go.Figure:
    """Rows of groups, columns best and median: image grids (PNG) or scatter plots of points (toy data)."""
    from plotly.subplots import make_subplots

    from genbench.results.samples import png_data_uri, read_points

    groups = list(dict.fromkeys(s.group for s in shots))
    titles = [f"{s.group}: {s.rank} ({s.trial_id}, {s.score})" for s in shots]
    cell = {(s.group, s.rank): i for i, s in enumerate(shots)}
    fig = make_subplots(
        rows=len(groups),
        cols=2,
        vertical_spacing=0.3 / len(groups),
        horizontal_spacing=0.08,
        subplot_titles=[titles[cell[(g, r)]] if (g, r) in cell else "" for g in groups for r in ("best", "median")],
    )
    for s in shots:
        row, col = groups.index(s.group) + 1, 1 if s.rank == "best" else 2
        if s.ext == "png":
            fig.add_trace(go.Image(source=png_data_uri(s.data), name=s.trial_id, hoverinfo="skip"), row=row, col=col)
            fig.update_xaxes(visible=False, row=row, col=col)
            fig.update_yaxes(visible=False, row=row, col=col)
        else:
            points = read_points(s.data)  # (N, 2) on toy data; the first two coordinates otherwise
            fig.add_trace(
                go.Scatter(
                    x=points[:, 0],
                    y=points[:, 1] if points.shape[1] > 1 else np.zeros(len(points)),
                    mode="markers",
                    marker={"size": 3, "color": _point_colour(s.group, col), "opacity": 0.6},
                    name=s.trial_id,
                    showlegend=False,
                ),
                row=row,
                col=col,
            )
            fig.update_xaxes(title_text="x1 (data units)", row=row, col=col)
            fig.update_yaxes(title_text="x2 (data units)", scaleanchor=f"x{2 * row - 2 + col}", row=row, col=col)
    fig.update_annotations(font_size=11)
    return _layout(fig, title, height=max(360, 300 * len(groups)), showlegend=False)


def _point_colour(group: str, col: int) -> str:
    """A family's points in its colour, as on every other panel; other groups' (GAN variants) by column."""
    family = family_of(group)
    return FAMILY_COLOURS[family] if family else OKABE_ITO[col - 1]


def outcome_vs_rate(trials: pd.DataFrame, metric: str, rate: str, groups: pd.Series) -> go.Figure:
    """Every run's objective against its one learning rate (log x), coloured by group; runs without a value
    (diverged, failed) as crosses on the worst value's line, so none is hidden."""
    worst = trials[metric].max() if _lower_is_better(metric) else trials[metric].min()
    labels = groups.astype(str).values
    colours = colour_map(list(labels))
    fig = go.Figure()
    for name in sorted(set(labels)):
        part = trials[labels == name]
        measured = part[metric].notna()
        for rows, unmeasured in ((part[measured], False), (part[~measured], True)):
            if rows.empty:
                continue
            fig.add_trace(
                _points(len(trials))(
                    x=rows[rate].astype(float),
                    y=[worst] * len(rows) if unmeasured else rows[metric].astype(float),
                    mode="markers",
                    name=f"{name}, no value: at the worst ({len(rows)})" if unmeasured else name,
                    marker=dict(
                        size=11,
                        color=colours[name],
                        line=dict(width=1, color="#333"),
                        symbol=["x" if unmeasured else STATUS_SYMBOLS.get(s, "circle") for s in rows["status"]],
                    ),
                    text=_hover(rows, metric, rows.assign(_g=name)["_g"]),
                    hoverinfo="text+x",
                )
            )
    _layout(fig, f"{metric} of every run against its learning rate")
    fig.update_xaxes(type="log", title=f"{rate.removeprefix('config.')} ({unit(rate)}, log scale)")
    fig.update_yaxes(title=metric_label(metric))
    return fig


def _lower_is_better(metric: str) -> bool:
    return METRICS[metric].better == "min" if metric in METRICS else True


def _wrap(text: str, limit: int) -> str:
    """A title longer than `limit` characters broken into lines at spaces (Plotly cuts long axis titles off)."""
    lines: list[str] = []
    width = min(limit, math.ceil(len(text) / math.ceil(len(text) / limit)) + 6)  # lines of even length
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def fit_titles(fig: go.Figure, width_px: float = 1100) -> go.Figure:
    """Wrap the figure title and every axis title that would not fit its space, and make room for the lines."""
    layout = fig.layout
    room = {"x": width_px - 40, "y": (layout.height or LAYOUT["height"]) - 40}
    for name in [k for k in layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        axis = layout[name]
        text = axis.title.text if axis.title else None
        domain = (axis.domain[1] - axis.domain[0]) if axis.domain else 1.0
        limit = max(12, int(room[name[0]] * domain / AXIS_PX_PER_CHAR))
        if text and "<br>" not in text and len(text) > limit:
            axis.title.text = _wrap(text, limit)
            axis.automargin = True
    title = layout.title.text if layout.title else None
    if title and "<br>" not in title and len(title) > TITLE_CHARS:
        layout.title.text = _wrap(title, TITLE_CHARS)
        layout.margin.t = (layout.margin.t or 60) + 22
    return fig
