"""Renders one defined panel over a study's results: resolves its columns, then calls a pure figure builder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards import figures
from genbench.dashboards.spec import KINDS, Panel
from genbench.metrics.names import METRICS

SAMPLE_GROUPS_MAX = 8  # rows of sample grids in one panel
FALLBACK_OBJECTIVES = (("quality.modes", "max"), ("quality.fd", "min"), ("likelihood.bpd", "min"),
                       ("likelihood.nll", "min"), ("cost.wall_s", "min"))


class Missing(Exception):
    """The results do not hold what a panel needs; the page says so in one line instead of drawing it."""


@dataclass
class Context:
    """A study's results as the panels read them."""

    trials: pd.DataFrame
    history: pd.DataFrame
    study: dict[str, Any]
    summary: dict[str, Any] | None = None
    curve: pd.DataFrame | None = None
    samples: Callable[[str], tuple[str, bytes] | None] = lambda trial_id: None  # trial_id -> (ext, file bytes)
    _configs: pd.DataFrame | None = field(default=None, repr=False)

    def objectives(self) -> list[tuple[str, str]]:
        """The study's objectives that the results hold; else the first measured of a fixed list."""
        found = [(o["metric"], o["mode"]) for o in self.study.get("objectives") or [] if self._measured(o["metric"])]
        return found or [next(((m, d) for m, d in FALLBACK_OBJECTIVES if self._measured(m)), ("cost.wall_s", "min"))]

    def _measured(self, column: str) -> bool:
        return column in self.trials and bool(self.trials[column].notna().any())

    def mode(self, metric: str) -> str:
        known = METRICS[metric].better if metric in METRICS else "min"
        return dict(self.objectives()).get(metric) or known

    def configs(self) -> pd.DataFrame:
        from genbench.results.analysis import configurations

        if self._configs is None:
            self._configs = configurations(self.trials)
        return self._configs

    def searched(self) -> list[str]:
        space = [f"config.{k}" for k in self.study.get("space") or {}]
        cols = space or [c for c in self.trials if c.startswith(("config.gan.loss", "config.gan.penalty",
                                                                 "config.gan.spectral_norm", "config.optim.lr"))]
        return [c for c in cols if c in self.trials and self.trials[c].notna().any()]

    def groups(self, name: str, table: pd.DataFrame | None = None) -> pd.Series:
        """Each run's group label, as Plotly text (figures.plain: settings and notes are the user's strings)."""
        table = self.trials if table is None else table
        if name == "variant":
            several = self.trials["family"].nunique() > 1
            return table["family"].map(figures.plain) if several else figures.variant_labels(table).astype(str)
        if name == "sampler":
            sampler = table["provenance.sampler"] if "provenance.sampler" in table else pd.Series("", index=table.index)
            labels = table["family"].astype(str) + sampler.fillna("").map(lambda s: f": {s}" if s else "")
            return labels.map(figures.plain)
        return table[name].map(figures.plain)

    def subset(self, where: dict[str, list[Any]]) -> Context:
        """The runs whose columns hold the given values (and their history); Missing when none does."""
        keep = pd.Series(True, index=self.trials.index)
        for column, values in where.items():
            if column not in self.trials:
                raise Missing(f"no {column} column in these results")
            keep &= self.trials[column].astype(str).isin([str(v) for v in values])
        if not keep.any():
            shown = "; ".join(f"{c} in {v}" for c, v in where.items())
            raise Missing(f"no runs with {shown}")
        trials = self.trials[keep]
        history = self.history[self.history["trial_id"].isin(set(trials["trial_id"]))]
        return Context(trials, history, self.study, self.summary, self.curve, self.samples)

    def column(self, value: str) -> str:
        """A token or column name -> the results column it means here (Missing when the study has none)."""
        objectives = self.objectives()
        if value == "objective":
            return objectives[0][0]
        if value == "objective_2":
            if len(objectives) < 2:
                raise Missing("the study has a single objective")
            return objectives[1][0]
        return value


def _need(table: pd.DataFrame, *columns: str) -> None:
    for c in columns:
        if c not in table or not table[c].notna().any():
            raise Missing(f"no {c} values in these results")


def _title(panel: Panel, default: str) -> str:
    return panel.title or default


def _outcome_vs_lr(p: Panel, ctx: Context) -> go.Figure:
    x, y, metric = (ctx.column(p.columns[r]) for r in ("x", "y", "metric"))
    _need(ctx.trials, x, y, metric)
    return figures.outcome_vs_lr(ctx.trials, metric, x, y)


def _rates(p: Panel, ctx: Context) -> go.Figure:
    group = p.columns["group"]
    return figures.rates(ctx.trials, ctx.groups(group), _title(p, f"Runs completed and diverged per {group}"))


def _by_group(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric)
    rows = ctx.trials[ctx.trials[metric].notna()]
    return figures.by_group(rows, metric, ctx.groups(p.columns["group"], rows),
                            _title(p, f"Final {metric} per {p.columns['group']}"), log=p.log_x)


def _curves(p: Panel, ctx: Context) -> go.Figure:
    metric = _history_column(p.columns["metric"], ctx)
    _need(ctx.history, metric)
    return figures.training_curves(ctx.history, ctx.trials, metric, _title(p, f"{metric} during training"),
                                   figures.metric_label(metric), log_y=p.log_y, groups=ctx.groups(p.columns["group"]))


def _history_column(value: str, ctx: Context) -> str:
    """A history column; the objective means its eval.* twin (quality.modes -> eval.modes)."""
    column = ctx.column(value)
    return f"eval.{column.split('.', 1)[1]}" if column.startswith("quality.") else column


def _seed_bands(p: Panel, ctx: Context) -> go.Figure:
    metric = _history_column(p.columns["metric"], ctx)
    _need(ctx.history, metric)
    return figures.seed_bands(ctx.history, ctx.trials, metric, ctx.groups(p.columns["group"]),
                              _title(p, f"{metric} during training"), log_y=p.log_y)


def _scatter(p: Panel, ctx: Context) -> go.Figure:
    x, y = ctx.column(p.columns["x"]), ctx.column(p.columns["y"])
    _need(ctx.trials, x, y)
    rows = ctx.trials.dropna(subset=[x, y])
    return figures.scatter(rows, x, y, ctx.groups(p.columns["group"], rows), _title(p, f"{y} against {x}"),
                           log_x=p.log_x, log_y=p.log_y)


def _list(p: Panel, ctx: Context, role: str) -> list[str]:
    values = p.columns[role] if isinstance(p.columns[role], list) else [p.columns[role]]
    out = [c for v in values for c in (ctx.searched() if v == "searched" else [ctx.column(v)])]
    return [c for c in out if c in ctx.trials]


def _parallel(p: Panel, ctx: Context) -> go.Figure:
    params, metric = _list(p, ctx, "params"), ctx.column(p.columns["metric"])
    _need(ctx.trials, metric)
    if not params:
        raise Missing("the study searched no settings")
    return figures.parallel(ctx.trials, params, metric)


def _importances(p: Panel, ctx: Context) -> go.Figure:
    scores = (ctx.summary or {}).get("importances") or {}
    rows = [{"metric": m, "param": k, "importance": float(v)} for m, s in scores.items() for k, v in (s or {}).items()]
    if not rows:
        raise Missing("summary.yaml holds no importances (a sweep computes them from 4 finished trials on)")
    fig = figures.importances(pd.DataFrame(rows))
    return fig.update_layout(title=_title(p, fig.layout.title.text))


def _budget_curve(p: Panel, ctx: Context) -> go.Figure:
    if ctx.curve is None or ctx.curve.empty:
        raise Missing("no budget_curve.parquet (a sweep writes it when it ends)")
    fig = figures.budget_curve(ctx.curve)
    return fig.update_layout(title=_title(p, fig.layout.title.text))


def _pareto(p: Panel, ctx: Context) -> go.Figure:
    x, y = ctx.column(p.columns["x"]), ctx.column(p.columns["y"])
    configs = ctx.configs()
    _need(configs, x, y)
    configs = configs.dropna(subset=[x, y])
    front = [str(e["config_id"]) for e in (ctx.summary or {}).get("pareto_front") or []]
    if not front:
        from genbench.results.analysis import pareto_front

        front = pareto_front(configs, [(x, ctx.mode(x)), (y, ctx.mode(y))])
    return figures.pareto(configs, x, y, front, ctx.groups(p.columns.get("group", "variant"), configs))


def _totals(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric)
    groups = ctx.groups(p.columns["group"])
    seconds = metric.endswith("_s")
    hours = seconds and ctx.trials[metric].astype(float).groupby(groups.values).sum().max() >= 1800
    what = "device-" if metric == "cost.device_s" else ""
    label = (f"{what}hours" if hours else f"{what}seconds" if seconds else figures.metric_label(metric))
    if metric == "cost.device_s":
        label += " (CPU core or GPU)"
    return figures.totals(ctx.trials, metric, groups, _title(p, f"{metric} per {p.columns['group']}"),
                          1 / 3600 if hours else 1.0, label)


def _early_stopping(p: Panel, ctx: Context) -> go.Figure:
    savings = (ctx.summary or {}).get("early_stopping")
    if not savings:
        raise Missing("summary.yaml holds no early-stopping record")
    fig = figures.early_stopping(savings)
    return fig.update_layout(title=_title(p, fig.layout.title.text))


def _trials_table(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    return figures.trials_table(ctx.trials, metric, ctx.mode(metric), _list(p, ctx, "params"))


def _samples(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric)
    rows = ctx.trials[ctx.trials[metric].notna()]
    rows = rows.sort_values(metric, ascending=ctx.mode(metric) == "min", kind="stable")
    shots: list[figures.SampleShot] = []
    groups = rows.groupby(ctx.groups(p.columns.get("group", "variant"), rows).values, sort=False)  # best group first
    for group, runs in groups:
        if len({s.group for s in shots}) < SAMPLE_GROUPS_MAX:
            shots += _best_and_median(ctx, str(group), runs, metric)
    if not shots:
        raise Missing("no sample files (samples/) for these runs; sweeps write them for every trained run")
    title = _title(p, f"Samples of the best and median run by {metric}")
    if groups.ngroups > SAMPLE_GROUPS_MAX:
        title += f" (the {SAMPLE_GROUPS_MAX} groups with the best runs, of {groups.ngroups})"
    return figures.sample_grids(shots, title)


def _best_and_median(ctx: Context, group: str, runs: pd.DataFrame, metric: str) -> list[figures.SampleShot]:
    """The best run and the median run (by rank) of one group, best first; those without a sample file skipped."""
    shots = []
    picks = {"best": 0, "median": len(runs) // 2} if len(runs) > 1 else {"best": 0}
    for rank, i in picks.items():
        trial_id = str(runs["trial_id"].iloc[i])
        found = ctx.samples(trial_id)
        if found:
            score = f"{metric.split('.', 1)[-1]} = {float(runs[metric].iloc[i]):.4g}"
            shots.append(figures.SampleShot(group, rank, trial_id, score, *found))
    return shots


BUILDERS: dict[str, Callable[[Panel, Context], go.Figure]] = {
    "outcome_vs_lr": _outcome_vs_lr, "rates": _rates, "by_group": _by_group, "curves": _curves,
    "seed_bands": _seed_bands, "scatter": _scatter, "parallel": _parallel, "importances": _importances,
    "budget_curve": _budget_curve, "pareto": _pareto, "totals": _totals, "early_stopping": _early_stopping,
    "trials_table": _trials_table, "samples": _samples}
assert set(BUILDERS) == set(KINDS), "every panel kind has a builder"


def render(panel: Panel, ctx: Context) -> go.Figure:
    """The panel's figure; Missing when the results lack what it needs."""
    return BUILDERS[panel.kind](panel, ctx.subset(panel.where) if panel.where else ctx)
