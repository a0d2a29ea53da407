"""Stability figures of a study: pure functions from results tables (pandas) to Plotly figures."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards.style import LAYOUT, STATUS_COLOURS, STATUS_SYMBOLS, colour_map
from genbench.metrics.names import METRICS

VARIANT_KEYS = ("config.gan.loss", "config.gan.penalty", "config.gan.spectral_norm")


def metric_label(metric: str) -> str:
    better = METRICS[metric].better if metric in METRICS else ""
    arrow = {"max": " (higher is better)", "min": " (lower is better)"}.get(better, "")
    return f"{metric}{arrow}"


def variant_labels(trials: pd.DataFrame) -> pd.Series:
    """'loss / penalty / SN' per trial, from the GAN variant columns present."""
    keys = [k for k in VARIANT_KEYS if k in trials]
    if not keys:
        return pd.Series(trials["family"], index=trials.index)

    def label(row: pd.Series) -> str:
        parts = [str(row[k]) for k in keys if k != "config.gan.spectral_norm"]
        if "config.gan.spectral_norm" in keys:
            parts.append("SN" if bool(row["config.gan.spectral_norm"]) else "no SN")
        return " / ".join(parts)

    return trials.apply(label, axis=1)


def _hover(trials: pd.DataFrame, metric: str) -> list[str]:
    variants = variant_labels(trials)
    return [f"trial {t}<br>{v}<br>status: {s}<br>{metric}: {m:.4g}"
            for t, v, s, m in zip(trials["trial_id"], variants, trials["status"], trials[metric].astype(float))]


def outcome_vs_lr(trials: pd.DataFrame, metric: str, x: str = "config.optim.lr_g",
                  y: str = "config.optim.lr_d") -> go.Figure:
    """Every trial at its (lr_g, lr_d): colour is the objective, symbol and outline the outcome."""
    fig = go.Figure()
    for status, group in trials.groupby("status", sort=False):
        finished = status == "completed"
        marker = dict(size=12, symbol=STATUS_SYMBOLS.get(status, "circle"), line=dict(width=1, color="#333"))
        if finished:
            marker.update(color=group[metric].astype(float), colorscale="Viridis", showscale=True,
                          colorbar=dict(title=metric.split(".")[-1]), cmin=trials[metric].min(),
                          cmax=trials[metric].max())
        else:
            marker.update(color=STATUS_COLOURS.get(status, "#7F7F7F"), size=13)
        fig.add_trace(go.Scatter(x=group[x], y=group[y], mode="markers", name=f"{status} ({len(group)})",
                                 marker=marker, text=_hover(group, metric), hoverinfo="text"))
    fig.update_layout(title=f"Outcome of every trial against its learning rates (colour: {metric})",
                      legend=dict(orientation="h", y=-0.2), **LAYOUT)
    fig.update_xaxes(type="log", title=f"{x.removeprefix('config.')} (Adam learning rate, log scale)")
    fig.update_yaxes(type="log", title=f"{y.removeprefix('config.')} (Adam learning rate, log scale)")
    return fig


def quality_by_variant(trials: pd.DataFrame, metric: str) -> go.Figure:
    """Distribution of the final objective per GAN variant (one row each); diverged trials counted in the label."""
    trials = trials.assign(variant=variant_labels(trials))
    fig = go.Figure()
    order = trials.groupby("variant")[metric].median().sort_values(ascending=True).index
    colours = colour_map(list(order))
    for variant in order:
        group = trials[trials["variant"] == variant]
        diverged = int((group["status"] == "diverged").sum())
        fig.add_trace(go.Box(x=group[metric].astype(float), name=f"{variant} (n={len(group)}, {diverged} diverged)",
                             orientation="h", boxpoints="all", jitter=0.4, pointpos=0, showlegend=False,
                             marker_color=colours[variant], text=_hover(group, metric),
                             hoverinfo="text+x"))
    fig.update_layout(title=f"Final {metric} per variant (loss / penalty / spectral norm)",
                      **{**LAYOUT, "height": 160 + 34 * len(order), "margin": dict(l=330, r=30, t=60, b=60)})
    fig.update_xaxes(title=metric_label(metric))
    fig.update_yaxes(title="")
    return fig


def training_curves(history: pd.DataFrame, trials: pd.DataFrame, column: str, title: str,
                    y_title: str, log_y: bool = False) -> go.Figure:
    """One line per trial of a history column over steps, coloured by variant; diverged trials dashed."""
    variants = dict(zip(trials["trial_id"], variant_labels(trials)))
    statuses = dict(zip(trials["trial_id"], trials["status"]))
    colours = colour_map(list(variants.values()))
    fig = go.Figure()
    shown: set[str] = set()
    rows = history.dropna(subset=[column]) if column in history else history.iloc[0:0]
    for trial_id, group in rows.groupby("trial_id", sort=True):
        variant = variants.get(trial_id, "?")
        dash = "dash" if statuses.get(trial_id) == "diverged" else "solid"
        fig.add_trace(go.Scatter(x=group["step"], y=group[column].astype(float), mode="lines",
                                 line=dict(color=colours.get(variant, "#333"), dash=dash, width=1.5),
                                 name=variant, legendgroup=variant, showlegend=variant not in shown,
                                 hovertext=f"trial {trial_id} ({statuses.get(trial_id)})", hoverinfo="text+x+y"))
        shown.add(variant)
    fig.update_layout(title=title, **LAYOUT)
    fig.update_xaxes(title="training step (generator updates)")
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear")
    return fig


def trials_table(trials: pd.DataFrame, metric: str, mode: str, columns: list[str]) -> go.Figure:
    """The trials sorted best first by the objective, with their variant settings and outcome."""
    ordered = trials.sort_values(metric, ascending=mode == "min", na_position="last")
    shown = [c for c in ["trial_id", "status", metric, *columns, "cost.wall_s", "error"] if c in ordered]
    values = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in ordered[c]] for c in shown]
    fig = go.Figure(go.Table(header=dict(values=[c.removeprefix("config.") for c in shown], fill_color="#E8EEF4",
                                         align="left"),
                             cells=dict(values=values, align="left", height=24)))
    fig.update_layout(title=f"Trials, best {metric} first", **{**LAYOUT, "height": 180 + 24 * min(len(ordered), 20)})
    return fig


def budget_curve(curve: pd.DataFrame) -> go.Figure:
    """Expected best objective against the number of trials, per variant or family (equal tuning budgets)."""
    metric = str(curve["metric"].iloc[0])
    fig = go.Figure()
    values = [v for v in dict.fromkeys(curve["value"]) if v != "all"]
    colours = colour_map(values)
    for value in ["all", *values]:
        part = curve[curve["value"] == value]
        fig.add_trace(go.Scatter(x=part["trials"], y=part["expected_best"], mode="lines+markers",
                                 name="every trial" if value == "all" else value,
                                 line=dict(color="#555555" if value == "all" else colours[value],
                                           dash="dash" if value == "all" else "solid")))
    group = next((g for g in curve["group"] if g != "all"), "")
    fig.update_layout(title=f"Expected best {metric} after n trials" + (f", per {group}" if group else ""),
                      **LAYOUT)
    fig.update_xaxes(title="trials (random subsets of the ones run)")
    fig.update_yaxes(title=metric_label(metric))
    return fig
