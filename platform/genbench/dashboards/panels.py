"""Renders one defined panel over a study's results: resolves its columns, then calls a pure figure builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from genbench.dashboards import figures
from genbench.dashboards.spec import KINDS, Panel
from genbench.metrics.names import METRICS

SAMPLE_GROUPS_MAX = 8  # rows of sample grids in one panel
CURVES_MAX = 100  # lines a curve panel draws in a large study: the best by the objective; the others as a band
FALLBACK_OBJECTIVES = (
    ("quality.modes", "max"),
    ("quality.fd", "min"),
    ("likelihood.bpd", "min"),
    ("likelihood.nll", "min"),
    ("cost.wall_s", "min"),
)


class Missing(Exception):
    """The results do not hold what a panel needs; the page says so in one line instead of drawing it."""


class NotApplicable(Missing):
    """The panel is about what this study does not have (a family it did not run, a metric none of its runs
    measures): the page leaves it out without a word, so a VAE study's pages never speak of discriminators."""


TRAINED = ("completed", "early_stopped", "diverged")  # runs that trained, so they measured what their study measures


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
        """The searched settings' columns; `family` first in a study of several families (it is searched too)."""
        space = [f"config.{k}" for k in self.study.get("space") or {}]
        cols = space or [
            c
            for c in self.trials
            if c.startswith(("config.gan.loss", "config.gan.penalty", "config.gan.spectral_norm", "config.optim.lr"))
        ]
        family = ["family"] if len(self.families()) > 1 else []
        return family + [c for c in cols if c in self.trials and self.trials[c].notna().any()]

    def families(self) -> list[str]:
        """The study's families (study.yaml: one name, a list, or 'vae+flow'), else those in its results."""
        named = self.study.get("family")
        listed = named if isinstance(named, list) else str(named).split("+") if named else []
        return [str(f) for f in listed] or sorted(self.trials["family"].astype(str).unique())

    def steps_title(self) -> str:
        """The step axis in the study's words: a GAN's step is a generator update, other families' a step."""
        return "training step (generator updates)" if self.families() == ["gan"] else figures.STEPS

    def group_word(self, name: str) -> str:
        """What a group token means here: 'variant' in a GAN study, 'family' in a study of several."""
        if name == "variant":
            return "variant" if self.families() == ["gan"] else "family"
        return {"sampler": "family and sampler"}.get(name, words(name))

    def trained(self) -> bool:
        return bool(self.trials["status"].isin(TRAINED).any())

    def groups(self, name: str, table: pd.DataFrame | None = None) -> pd.Series:
        """Each run's group label, as Plotly text (figures.plain: settings and notes are the user's strings)."""
        table = self.trials if table is None else table
        if name == "variant":
            several = len(self.families()) > 1  # the study's, not this subset's: a family keeps one colour
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
            shown = "; ".join(f"{words(c)} in {v}" for c, v in where.items())
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


def words(column: str) -> str:
    """A column as the study file writes it: config.optim.lr -> optim.lr."""
    return column.removeprefix("config.")


def _measured(table: pd.DataFrame, column: str) -> bool:
    return column in table and bool(table[column].notna().any())


def _need(table: pd.DataFrame, *columns: str, ctx: Context | None = None) -> None:
    """Missing when a column holds no value; NotApplicable when the runs trained and none measured it (the
    study does not measure it: no note), unless its final value exists (then it is measured at the end only)."""
    for c in columns:
        if _measured(table, c):
            continue
        if ctx is not None and table is ctx.history and _measured(ctx.trials, _final(c)):
            raise Missing(f"{_final(c)} is measured at the end of each run only")
        if ctx is not None and ctx.trained():
            raise NotApplicable(f"no run of this study measures {words(c)}")
        raise Missing(f"no {words(c)} values in these results yet")


def _final(column: str) -> str:
    """The final value a history column tracks: eval.fd -> quality.fd; other columns are their own."""
    return f"quality.{column.split('.', 1)[1]}" if column.startswith("eval.") else column


def _title(panel: Panel, default: str, ctx: Context | None = None) -> str:
    """The panel's title in the study's words (study_words)."""
    title = panel.title or default
    return title if ctx is None else study_words(title, ctx)


def study_words(text: str, ctx: Context) -> str:
    """A definition's title with its {objective}, {objective_2} and {variant} filled in for this study."""
    if "{" not in text:
        return text
    objectives = [m for m, _ in ctx.objectives()]
    tokens = {
        "objective": objectives[0],
        "objective_2": objectives[1] if len(objectives) > 1 else objectives[0],
        "variant": ctx.group_word("variant"),
    }
    return text.format_map(tokens)


def _outcome_vs_lr(p: Panel, ctx: Context) -> go.Figure:
    """The two learning rates (GAN) when the study has them, else its one rate (optim.lr), whichever it searches."""
    x, y, metric = (ctx.column(p.columns[r]) for r in ("x", "y", "metric"))
    rate = ctx.column(p.columns.get("lr", "config.optim.lr"))
    searched = set(ctx.searched())
    pair = _measured(ctx.trials, x) and _measured(ctx.trials, y)
    if pair and not (rate in searched and not {x, y} & searched):
        _need(ctx.trials, metric, ctx=ctx)
        return figures.outcome_vs_lr(ctx.trials, metric, x, y)
    _need(ctx.trials, rate, metric, ctx=ctx)
    rows = ctx.trials[ctx.trials[rate].notna()]
    fig = figures.outcome_vs_rate(rows, metric, rate, ctx.groups(p.columns.get("group", "variant"), rows))
    return fig.update_layout(title=_title(p, fig.layout.title.text, ctx))


def _rates(p: Panel, ctx: Context) -> go.Figure:
    group = p.columns["group"]
    return figures.rates(
        ctx.trials, ctx.groups(group), _title(p, f"Runs completed and diverged per {ctx.group_word(group)}", ctx)
    )


def _by_group(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric, ctx=ctx)
    rows = ctx.trials[ctx.trials[metric].notna()]
    return figures.by_group(
        rows,
        metric,
        ctx.groups(p.columns["group"], rows),
        _title(p, f"Final {metric} per {ctx.group_word(p.columns['group'])}", ctx),
        log=p.log_x,
    )


def _curves(p: Panel, ctx: Context) -> go.Figure:
    metric = _history_column(p.columns["metric"], ctx)
    _need(ctx.history, metric, ctx=ctx)
    keep = _best(ctx, "trial_id")
    title = _title(p, f"{metric} during training", ctx)
    return figures.training_curves(
        ctx.history,
        ctx.trials,
        metric,
        title + (f"; the {CURVES_MAX} best by {ctx.objectives()[0][0]}, the others as a band" if keep else ""),
        figures.metric_label(metric),
        log_y=p.log_y,
        groups=ctx.groups(p.columns["group"]),
        steps=ctx.steps_title(),
        keep=keep,
    )


def _best(ctx: Context, key: str) -> set[str] | None:
    """The ids (`trial_id` or `config_id`) a curve panel draws one by one: the CURVES_MAX best by the first
    objective; None when the study has no more."""
    metric, mode = ctx.objectives()[0]
    column = key if key in ctx.trials else "trial_id"
    return figures.top_ids(ctx.trials, metric, mode, column, CURVES_MAX) if metric in ctx.trials else None


def _history_column(value: str, ctx: Context) -> str:
    """A history column; the objective means its eval.* twin (quality.modes -> eval.modes)."""
    column = ctx.column(value)
    return f"eval.{column.split('.', 1)[1]}" if column.startswith("quality.") else column


def _seed_bands(p: Panel, ctx: Context) -> go.Figure:
    metric, title = _curve_of(p, ctx)
    keep = _best(ctx, "config_id")
    title += f"; the {CURVES_MAX} best by {ctx.objectives()[0][0]}, the others as a band" if keep else ""
    return figures.seed_bands(
        ctx.history,
        ctx.trials,
        metric,
        ctx.groups(p.columns["group"]),
        title,
        log_y=p.log_y,
        steps=ctx.steps_title(),
        keep=keep,
    )


def _curve_of(p: Panel, ctx: Context) -> tuple[str, str]:
    """The history column a curve panel draws and its title. For the objective: the first of the study's
    objectives that has a curve, the title saying which objectives are measured at the end only."""
    if p.columns["metric"] != "objective":
        metric = _history_column(p.columns["metric"], ctx)
        _need(ctx.history, metric, ctx=ctx)
        return metric, _title(p, f"{metric} during training", ctx)
    objectives = [m for m, _ in ctx.objectives()]
    curves = [_history_column(m, ctx) for m in objectives]
    drawn = next((i for i, c in enumerate(curves) if _measured(ctx.history, c)), None)
    if drawn is None:
        _need(ctx.history, curves[0], ctx=ctx)
        raise AssertionError("unreachable: _need raises for a column without values")
    ended = objectives[:drawn]  # why the first objective's curve is not the one drawn
    title = (
        _title(p, "The objective during training", ctx)
        if drawn == 0
        else f"{objectives[drawn]} during training (mean over seeds, min-max band)"
    )
    if ended:
        title += f"; {', '.join(ended)}: measured at the end only"
    return curves[drawn], title


def _scatter(p: Panel, ctx: Context) -> go.Figure:
    x, y = ctx.column(p.columns["x"]), ctx.column(p.columns["y"])
    _need(ctx.trials, x, y, ctx=ctx)
    rows = ctx.trials.dropna(subset=[x, y])
    return figures.scatter(
        rows,
        x,
        y,
        ctx.groups(p.columns["group"], rows),
        _title(p, f"{y} against {x}", ctx),
        log_x=p.log_x,
        log_y=p.log_y,
    )


def _list(p: Panel, ctx: Context, role: str) -> list[str]:
    values = p.columns[role] if isinstance(p.columns[role], list) else [p.columns[role]]
    out = [c for v in values for c in (ctx.searched() if v == "searched" else [ctx.column(v)])]
    return [c for c in out if c in ctx.trials]


def _parallel(p: Panel, ctx: Context) -> go.Figure:
    params, metric = _list(p, ctx, "params"), ctx.column(p.columns["metric"])
    _need(ctx.trials, metric, ctx=ctx)
    if not params:
        raise Missing("the study searched no settings")
    return figures.parallel(ctx.trials, params, metric)


def _importances(p: Panel, ctx: Context) -> go.Figure:
    scores = (ctx.summary or {}).get("importances") or {}
    rows = [{"metric": m, "param": k, "importance": float(v)} for m, s in scores.items() for k, v in (s or {}).items()]
    if not rows:
        raise Missing("summary.yaml holds no importances (a sweep computes them from 4 finished trials on)")
    from genbench.results.analysis import importance_method

    fig = figures.importances(pd.DataFrame(rows), importance_method(ctx.summary or {}))
    return fig.update_layout(title=_title(p, fig.layout.title.text, ctx))


def _budget_curve(p: Panel, ctx: Context) -> go.Figure:
    if ctx.curve is None or ctx.curve.empty:
        raise Missing("no budget_curve.parquet (a sweep writes it when it ends)")
    fig = figures.budget_curve(ctx.curve)
    return fig.update_layout(title=_title(p, fig.layout.title.text, ctx))


def _pareto(p: Panel, ctx: Context) -> go.Figure:
    x, y = ctx.column(p.columns["x"]), ctx.column(p.columns["y"])
    configs = ctx.configs()
    _need(configs, x, y, ctx=ctx)
    configs = configs.dropna(subset=[x, y])
    front = [str(e["config_id"]) for e in (ctx.summary or {}).get("pareto_front") or []]
    if not front:
        from genbench.results.analysis import pareto_front

        front = pareto_front(configs, [(x, ctx.mode(x)), (y, ctx.mode(y))])
    title = _title(
        p,
        f"{_aspect(y).capitalize()} against {_aspect(x)} (the two objectives): configurations, Pareto front joined",
        ctx,
    )
    return figures.pareto(configs, x, y, front, ctx.groups(p.columns.get("group", "variant"), configs), title)


def _aspect(metric: str) -> str:
    """What a metric measures, in a word: quality.fd -> 'quality', stability.seed_cv -> 'stability'."""
    return metric.split(".", 1)[0] if "." in metric else metric


def _totals(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric, ctx=ctx)
    groups = ctx.groups(p.columns["group"])
    seconds = metric.endswith("_s")
    hours = seconds and ctx.trials[metric].astype(float).groupby(groups.values).sum().max() >= 1800
    what = "device-" if metric == "cost.device_s" else ""
    label = f"{what}hours" if hours else f"{what}seconds" if seconds else figures.metric_label(metric)
    if metric == "cost.device_s":
        label += " (CPU core or GPU)"
    title = _title(p, f"{metric} per {ctx.group_word(p.columns['group'])}", ctx)
    return figures.totals(ctx.trials, metric, groups, title, 1 / 3600 if hours else 1.0, label)


def _early_stopping(p: Panel, ctx: Context) -> go.Figure:
    savings = (ctx.summary or {}).get("early_stopping")
    if not savings:
        raise Missing("summary.yaml holds no early-stopping record")
    fig = figures.early_stopping(savings)
    return fig.update_layout(title=_title(p, fig.layout.title.text, ctx))


def _trials_table(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    return figures.trials_table(ctx.trials, metric, ctx.mode(metric), _list(p, ctx, "params"))


def _samples(p: Panel, ctx: Context) -> go.Figure:
    metric = ctx.column(p.columns["metric"])
    _need(ctx.trials, metric, ctx=ctx)
    rows = ctx.trials[ctx.trials[metric].notna()]
    rows = rows.sort_values(metric, ascending=ctx.mode(metric) == "min", kind="stable")
    shots: list[figures.SampleShot] = []
    groups = rows.groupby(ctx.groups(p.columns.get("group", "variant"), rows).values, sort=False)  # best group first
    for group, runs in groups:
        if len({s.group for s in shots}) < SAMPLE_GROUPS_MAX:
            shots += _best_and_median(ctx, str(group), runs, metric)
    if not shots:
        raise Missing("no sample files (samples/) for these runs; sweeps write them for every trained run")
    title = _title(p, f"Samples of the best and median run by {metric}", ctx)
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
    "outcome_vs_lr": _outcome_vs_lr,
    "rates": _rates,
    "by_group": _by_group,
    "curves": _curves,
    "seed_bands": _seed_bands,
    "scatter": _scatter,
    "parallel": _parallel,
    "importances": _importances,
    "budget_curve": _budget_curve,
    "pareto": _pareto,
    "totals": _totals,
    "early_stopping": _early_stopping,
    "trials_table": _trials_table,
    "samples": _samples,
}
assert set(BUILDERS) == set(KINDS), "every panel kind has a builder"


def panel_name(panel: Panel, ctx: Context) -> str:
    """The panel as a note names it: its title in the study's words, else what its kind shows (never its id)."""
    return _title(panel, KINDS[panel.kind].doc.capitalize(), ctx)


def render(panel: Panel, ctx: Context) -> go.Figure:
    """The panel's figure, its titles fitted; Missing when the results lack what it needs, NotApplicable when the
    panel is about a family the study did not run."""
    families = panel.where.get("family")
    if families is not None and not {str(f) for f in families} & set(ctx.families()):
        raise NotApplicable(f"the study has no runs of family {' or '.join(map(str, families))}")
    return figures.fit_titles(BUILDERS[panel.kind](panel, ctx.subset(panel.where) if panel.where else ctx))
