"""The measured family comparison table: each folklore cell replaced by a value, its unit, spread and source."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from genbench.dashboards.stats import finite, mean_std, wilson
from genbench.dashboards.words import protocol_words

FAMILIES = ("gan", "vae", "diffusion", "autoregressive", "flow")
QUALITY = (
    ("quality.modes", "max", "modes covered"),
    ("quality.fd", "min", "Frechet distance"),
    ("quality.swd", "min", "sliced Wasserstein"),
)
COLUMNS = (
    "quality",
    "inference speed",
    "mode collapse",
    "likelihood",
    "quality over runs",
    "training stability",
    "diverged or collapsed",
)
BEST_COLUMNS = COLUMNS[:4]  # the best configuration's; the last two are over all the family's runs
OPTIONAL = ("mode collapse", "likelihood")  # shown only where a family of the study measured them
HEADERS = {
    "quality": "quality, best configuration",
    "inference speed": "inference speed, best configuration",
    "mode collapse": "mode collapse, best configuration",
    "likelihood": "likelihood, best configuration",
    "quality over runs": "quality, all completed runs",
    "training stability": "training stability, all runs",
    "diverged or collapsed": "diverged or collapsed, all runs",
}
Success = tuple[str, str, float]  # (metric, 'at_least' | 'at_most', value): study.yaml's success, as a run reaches it


@dataclass(frozen=True)
class Cell:
    """One measured cell: mean, spread (sample std or a 95% interval), what the spread is over, unit, source."""

    value: float
    unit: str
    n: int = 0
    spread: float = math.nan
    interval: tuple[float, float] | None = None
    over: str = ""
    link: str = ""
    note: str = ""

    def main(self) -> str:
        """'8.18 modes ± 9.3': the value, its unit and its spread."""
        if not math.isfinite(self.value):
            return self.note or "not measured"
        value = f"{_num(self.value)} {self.unit}".strip()
        if self.interval:
            return value + f" [{_num(self.interval[0])}, {_num(self.interval[1])}]"
        return value + (f" ± {_num(self.spread)}" if math.isfinite(self.spread) else "")

    def detail(self) -> str:
        """'n=3 seeds, exact': what the spread is over, and a note."""
        if not math.isfinite(self.value):
            return ""
        over = self.over[:-1] if self.n == 1 and self.over.endswith("s") else self.over  # 'n=1 run'
        return ", ".join(x for x in (f"n={self.n} {over}" if over else "", self.note) if x)

    def text(self) -> str:
        detail = self.detail()
        return self.main() + (f" ({detail})" if detail else "")


def _num(value: float) -> str:
    """3 significant digits; thousands with separators instead of exponents."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _best_config(rows: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """The rows (seeds) of the configuration with the best mean `metric`; all rows when none measured it."""
    key = rows["config_id"] if "config_id" in rows else rows["trial_id"]
    complete = rows.groupby(key.values)["status"].agg(lambda s: bool((s == "completed").all()))
    if complete.any():  # a configuration whose every seed trained to the end, when there is one
        rows = rows[complete.reindex(key.values).values]
        key = rows["config_id"] if "config_id" in rows else rows["trial_id"]
    means = rows.groupby(key.values)[metric].mean().dropna()
    if means.empty:
        return rows.iloc[0:0]
    best = means.idxmax() if mode == "max" else means.idxmin()
    return rows[key.values == best]


def _best_cell(best: pd.DataFrame, metric: str, unit: str, link: str, note: str = "") -> Cell:
    """A metric of the best configuration: the mean and [min, max] over its seeds, or its single run (n = 1).

    The seeds' range, not a confidence interval of the mean: with the 2 or 3 seeds studies run, a 95% t-interval
    is +-12.7 or +-4.3 standard errors wide and reaches impossible values (negative modes or speeds)."""
    if metric not in best:
        return Cell(math.nan, unit, note="not measured")
    values = finite(best[metric])
    if not values:
        return Cell(math.nan, unit, note="not measured")
    n = len(values)
    return Cell(
        sum(values) / n,
        unit,
        n,
        interval=(min(values), max(values)) if n > 1 else None,
        over="seeds" if n > 1 else "runs",
        link=link,
        note=note,
    )


def _runs_cell(rows: pd.DataFrame, metric: str, unit: str) -> Cell:
    """A metric's spread over every completed run of the family: mean ± sample std (n runs)."""
    done = rows[rows["status"] == "completed"]
    mean, std, n = mean_std(done[metric]) if metric in done else (math.nan, math.nan, 0)
    if not n:
        return Cell(math.nan, unit, note="no completed run measured it")
    return Cell(mean, unit, n, std, over="completed runs", link="quality.html#quality-by-group")


def _quality_metric(trials: pd.DataFrame, study: dict[str, Any]) -> tuple[str, str, str]:
    for o in study.get("objectives") or []:
        if o["metric"].startswith("quality.") and o["metric"] in trials and trials[o["metric"]].notna().any():
            return o["metric"], o["mode"], o["metric"].split(".")[1]
    return next(((m, d, u) for m, d, u in QUALITY if m in trials and trials[m].notna().any()), QUALITY[0])


def _likelihood(best: pd.DataFrame, rows: pd.DataFrame) -> Cell:
    for metric, unit in (("likelihood.bpd", "bits/dim"), ("likelihood.nll", "nats/example")):
        if metric in rows and rows[metric].notna().any():
            method = rows.get("likelihood.method", pd.Series(dtype=str)).dropna()
            return _best_cell(
                best, metric, unit, "quality.html#likelihood", note=str(method.iloc[0]) if len(method) else ""
            )
    return Cell(math.nan, "", note="no likelihood")


def family_row(
    rows: pd.DataFrame, metric: str, mode: str, quality_unit: str, success: Success | None = None
) -> dict[str, Cell]:
    """The cells of one family from its runs: its best configuration's, and over all its runs (configurations x
    seeds): the share that succeeded (reached `success`, or completed without one) and the share that failed
    by diverging or collapsing."""
    best = _best_config(rows, metric, mode) if metric in rows else rows.iloc[0:0]
    speed = _best_cell(best, "cost.sample_per_s", "samples/s", "cost.html#sampling-speed")
    nfe = _best_cell(best, "cost.sample_nfe", "", "").value
    if math.isfinite(nfe) and math.isfinite(speed.value):
        speed = replace(speed, note=f"NFE {nfe:.3g}")
    quality = _best_cell(best, metric, quality_unit, "quality.html#quality-by-group")
    if len(best) and math.isfinite(quality.value):
        key = best["config_id"] if "config_id" in best else best["trial_id"]
        quality = replace(quality, note=f"trial {key.iloc[0]}")
    return {
        "quality": quality,
        "inference speed": speed,
        "mode collapse": _best_cell(best, "quality.mode_kl", "nats KL to uniform", "quality.html#mode-kl"),
        "likelihood": _likelihood(best, rows),
        "quality over runs": _runs_cell(rows, metric, quality_unit),
        "training stability": _share(rows, succeeded(rows, success), _success_unit(success)),
        "diverged or collapsed": _share(rows, failed_to_train(rows), "% of runs"),
    }


def succeeded(rows: pd.DataFrame, success: Success | None) -> pd.Series:
    """Runs that completed and, where the study sets a success threshold, reached it."""
    done = rows["status"] == "completed"
    if success is None or success[0] not in rows:
        return done
    values = pd.to_numeric(rows[success[0]], errors="coerce")
    return done & (values >= success[2] if success[1] == "at_least" else values <= success[2])


def failed_to_train(rows: pd.DataFrame) -> pd.Series:
    """Runs that diverged, or that the loop stopped for mode collapse (not those a scheduler stopped)."""
    errors = rows["error"].fillna("").astype(str) if "error" in rows else pd.Series("", index=rows.index)
    return (rows["status"] == "diverged") | (
        (rows["status"] == "early_stopped") & errors.str.startswith("mode collapse")
    )


def _share(rows: pd.DataFrame, hits: pd.Series, unit: str) -> Cell:
    """The share of the family's runs that `hits` marks, in %, with its 95% Wilson interval."""
    count, n = int(hits.sum()), len(rows)
    lo, hi = wilson(count, n)
    return Cell(
        100 * count / n if n else math.nan,
        unit,
        n,
        interval=(100 * lo, 100 * hi),
        over="runs",
        link="stability.html#rates",
    )


def _success_unit(success: Success | None) -> str:
    if success is None:
        return "% completed"
    return f"% reached {success[0].split('.')[-1]} {'>=' if success[1] == 'at_least' else '<='} {success[2]:g}"


def study_success(study: dict[str, Any]) -> Success | None:
    """study.yaml's success threshold as (metric, side, value), or None."""
    raw = study.get("success")
    if not isinstance(raw, dict) or not {"metric", "side", "value"} <= set(raw):
        return None
    return str(raw["metric"]), str(raw["side"]), float(raw["value"])


def shown(rows: list[tuple[str, dict[str, Cell]]]) -> list[str]:
    """The columns to show: mode collapse and likelihood only where some family measured them (a VAE/flow study
    has no mode statistic, a GAN study no likelihood), every other column always."""
    return [c for c in COLUMNS if c not in OPTIONAL or any(math.isfinite(cells[c].value) for _, cells in rows)]


def ran(trials: pd.DataFrame) -> list[str]:
    """The families the study ran, in the usual order (a family unknown to this version last)."""
    present = [str(f) for f in trials["family"].dropna().unique()]
    return [f for f in FAMILIES if f in present] + sorted(f for f in present if f not in FAMILIES)


def family_table(trials: pd.DataFrame, study: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Cell]]], str]:
    """(family, cells) for each family the study ran, and the caption: the protocol the runs came from and what each
    column shows."""
    metric, mode, unit = _quality_metric(trials, study)
    success = study_success(study)
    rows = [(f, family_row(trials[trials["family"] == f], metric, mode, unit, success)) for f in ran(trials)]
    measured = ", ".join(c for c in shown(rows) if c in BEST_COLUMNS)
    stability = (
        f"the share of all the family's runs (configurations x seeds) that completed with {success[0]} "
        f"{'>=' if success[1] == 'at_least' else '<='} {success[2]:g}"
        if success
        else "the share of all the family's runs that completed"
    )
    caption = (
        f"Protocol: {protocol_words(study)}. "
        f"Best configuration: each family's configuration with the best mean {metric} (among those whose "
        f"every seed completed, when there is one); its {measured} are the mean and [min, max] over its "
        "seeds, or its single run (n=1 run). "
        f"All runs: {metric} as mean ± std over every completed run of the family; training stability as "
        f"{stability}, and the share that diverged or collapsed, each with a 95% Wilson interval."
    )
    return rows, caption


def to_text(rows: list[tuple[str, dict[str, Cell]]], markdown: bool = False) -> str:
    """The table as Markdown or as aligned plain text for a terminal."""
    columns = shown(rows)
    header = ["family", *(HEADERS[c] for c in columns)]
    if markdown:
        body = [[family, *(cells[c].text() for c in columns)] for family, cells in rows]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    details = [["", *(cells[c].detail() for c in columns)] for _, cells in rows]
    mains = [[family, *(cells[c].main() for c in columns)] for family, cells in rows]
    grid = [header] + [line for m, d in zip(mains, details) for line in ([m, d] if any(d) else [m])]
    widths = [max(len(r[i]) for r in grid) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in grid)


def to_html(rows: list[tuple[str, dict[str, Cell]]], caption: str) -> str:
    """The table for the index page, each cell linked to the panel it comes from; a first header row says which
    columns are the best configuration's and which are over all the family's runs."""

    def cell(c: Cell) -> str:
        text = html.escape(c.main()) + (f"<br><small>{html.escape(c.detail())}</small>" if c.detail() else "")
        return f'<td><a href="{c.link}">{text}</a></td>' if c.link and math.isfinite(c.value) else f"<td>{text}</td>"

    columns = shown(rows)
    best = sum(c in BEST_COLUMNS for c in columns)
    groups = (
        f'<tr><th></th><th colspan="{best}">the family\'s best configuration</th>'
        f'<th colspan="{len(columns) - best}">all the family\'s runs</th></tr>'
    )
    short = {"quality over runs": "quality"}  # under the group header that says over what
    head = "".join(f"<th>{html.escape(short.get(h, h))}</th>" for h in ("family", *columns))
    body = "".join(f"<tr><th>{html.escape(f)}</th>{''.join(cell(cells[c]) for c in columns)}</tr>" for f, cells in rows)
    return (
        f'<table class="families" id="family-table"><caption>{html.escape(caption)}</caption>'
        f"<thead>{groups}<tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def report(results: str, markdown: bool = False) -> str:
    """The family table of a results directory, for `genbench report`."""
    from genbench.dashboards.context import load_context

    ctx = load_context(results)
    rows, caption = family_table(ctx.trials, ctx.study)
    title = f"Study {ctx.study.get('study', '')}: the families, measured ({len(ctx.trials)} runs)"
    if markdown:
        return f"### {title}\n\n{to_text(rows, markdown=True)}\n\n{caption}"
    return f"{title}\n\n{to_text(rows)}\n\n{caption}"


def report_document(results: str) -> dict[str, Any]:
    """`genbench report --json`: the table's cells, every column for every family (`columns`: those the table
    shows), column names with _ for spaces; a value not measured is null, with a note saying why."""
    from genbench.dashboards.context import load_context

    ctx = load_context(results)
    rows, caption = family_table(ctx.trials, ctx.study)
    metric, mode, _ = _quality_metric(ctx.trials, ctx.study)
    return {
        "study": ctx.study.get("study", ""),
        "runs": len(ctx.trials),
        "quality_metric": {"metric": metric, "mode": mode},
        "columns": [_key(c) for c in shown(rows)],
        "caption": caption,
        "families": [{"family": f, **{_key(c): _cell_document(cells[c]) for c in COLUMNS}} for f, cells in rows],
    }


def _key(column: str) -> str:
    return column.replace(" ", "_")


def _cell_document(cell: Cell) -> dict[str, Any]:
    """A cell's numbers (NaN becomes null on output) and its text as the table prints it."""
    return {
        "value": cell.value,
        "unit": cell.unit,
        "n": cell.n,
        "spread": cell.spread,
        "interval": list(cell.interval) if cell.interval else None,
        "over": cell.over,
        "note": cell.note,
        "text": cell.text(),
    }
