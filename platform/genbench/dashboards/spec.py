"""Dashboard definitions (dashboards/definitions/*.yaml): pages of panels over result columns, loaded and validated."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from genbench.errors import ConfigError, suggest
from genbench.yamlfile import YamlDoc, load_yaml

DEFINITIONS = Path(__file__).resolve().parent / "definitions"  # package data: the shipped pages

TOKENS = {
    "objective": "the study's first objective",
    "objective_2": "the study's second objective",
    "variant": "GAN loss / penalty / SN in a GAN study, else the family",
    "searched": "the study's searched settings (lists only)",
    "sampler": "the family and the sampler its sampling speed was measured with (provenance.sampler)",
}
BASE_COLUMNS = (
    "trial_id",
    "config_id",
    "study",
    "family",
    "status",
    "seed",
    "error",
    "start_time",
    "end_time",
    "steps",
    "step",
    "workers",
)
TRAIN_COLUMNS = (
    "loss",
    "loss_d",
    "loss_g",
    "penalty",
    "grad_norm",
    "grad_norm_d",
    "grad_norm_g",
    "d_real",
    "d_fake",
    "elbo",
    "kl",
    "recon",
    "bpd",
    "nll",
)
EXTRA_COLUMNS = ("cost.usd",)


class Kind(NamedTuple):
    """A panel kind: the column roles it needs, those it may take, those that take lists, and what it reads."""

    roles: tuple[str, ...]
    optional: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    source: str = "trials"  # trials | history | summary | budget_curve | samples
    doc: str = ""


KINDS: dict[str, Kind] = {
    "outcome_vs_lr": Kind(
        ("x", "y", "metric"),
        optional=("lr", "group"),
        doc="every run at its two learning rates (x, y), colour the outcome; where the study "
        "searches one rate (lr) instead, the outcome against it",
    ),
    "rates": Kind(("group",), doc="share of runs completed / diverged per group, 95% Wilson intervals"),
    "by_group": Kind(("metric", "group"), doc="distribution of a final value per group"),
    "curves": Kind(("metric", "group"), source="history", doc="a history column over steps, one line per run"),
    "seed_bands": Kind(
        ("metric", "group"),
        source="history",
        doc="a history column over steps, mean and min-max band over each configuration's seeds",
    ),
    "scatter": Kind(("x", "y", "group"), doc="one point per run at (x, y)"),
    "parallel": Kind(("params", "metric"), lists=("params",), doc="parallel coordinates, settings -> outcome"),
    "importances": Kind((), source="summary", doc="PED-ANOVA importances from summary.yaml (its importance_method)"),
    "budget_curve": Kind((), source="budget_curve", doc="expected best objective after n trials"),
    "pareto": Kind(("x", "y"), optional=("group",), doc="configurations and the Pareto front from summary.yaml"),
    "totals": Kind(("metric", "group"), doc="sum of a cost column per group (seconds shown as hours)"),
    "early_stopping": Kind((), source="summary", doc="compute saved by early stopping, from summary.yaml"),
    "trials_table": Kind(("metric", "params"), lists=("params",), doc="the runs, best first"),
    "samples": Kind(
        ("metric",),
        optional=("group",),
        source="samples",
        doc="samples of the best and median run per group by a metric (image grids or point clouds)",
    ),
}
TITLE_FIELDS = ("objective", "objective_2", "variant")  # {objective} in a title: the study's first objective
PANEL_KEYS = ("id", "kind", "title", "columns", "where", "log_x", "log_y", "note")
PAGE_KEYS = ("page", "title", "order", "intro", "panels")


@dataclass(frozen=True)
class Panel:
    id: str
    kind: str
    title: str
    columns: dict[str, Any]
    log_x: bool = False
    log_y: bool = False
    note: str = ""
    where: dict[str, list[Any]] = field(default_factory=dict)  # only the runs whose column holds one of the values


@dataclass(frozen=True)
class PageDef:
    name: str
    title: str
    order: int
    intro: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)
    source: str = ""


@functools.lru_cache(maxsize=1)
def known_columns() -> frozenset[str]:
    """Every column a panel may name: trial, metric, history and config.* columns."""
    from genbench.config import valid_keys
    from genbench.families import FAMILIES
    from genbench.results.names import HISTORY_PAD, TRIAL_PAD

    config = {
        f"config.{k}" for family in FAMILIES.describe() for k in valid_keys(family) if k not in ("family", "seed")
    }
    train = {f"train.{k}" for k in TRAIN_COLUMNS}
    return frozenset({*BASE_COLUMNS, *TRIAL_PAD, *HISTORY_PAD, *EXTRA_COLUMNS, *train, *config})


def _check_keys(doc: YamlDoc, data: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            path = f"{prefix}{key}"
            raise ConfigError(f"unknown key {key!r}", key=path, source=doc.where(path), fix=suggest(str(key), allowed))


def _check_column(doc: YamlDoc, value: Any, path: str, allow_list: bool) -> None:
    if allow_list and isinstance(value, list):
        for i, item in enumerate(value):
            _check_column(doc, item, f"{path}[{i}]", False)
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(
            "expected a column name",
            key=path,
            source=doc.where(path),
            fix="e.g. quality.modes, config.optim.lr_g, family, or objective",
        )
    if value == "searched" and not allow_list:
        raise ConfigError(
            "'searched' names several columns; it only fits a list role",
            key=path,
            source=doc.where(path),
            fix="name one column",
        )
    if value not in TOKENS and value not in known_columns():
        raise ConfigError(
            f"unknown column {value!r}",
            key=path,
            source=doc.where(path),
            fix=suggest(value, [*TOKENS, *known_columns()]),
        )


def _panel(doc: YamlDoc, raw: Any, i: int) -> Panel:
    prefix = f"panels[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with kind, id and columns", key=prefix, source=doc.where(prefix))
    _check_keys(doc, raw, PANEL_KEYS, f"{prefix}.")
    kind_name = raw.get("kind")
    if kind_name not in KINDS:
        raise ConfigError(
            f"unknown panel kind {kind_name!r}",
            key=f"{prefix}.kind",
            source=doc.where(f"{prefix}.kind", prefix),
            fix=suggest(str(kind_name), KINDS),
        )
    kind = KINDS[kind_name]
    columns = raw.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigError(
            "expected a mapping of role: column",
            key=f"{prefix}.columns",
            source=doc.where(f"{prefix}.columns"),
            fix=f"roles of {kind_name}: {', '.join(kind.roles)}",
        )
    _check_keys(doc, columns, kind.roles + kind.optional, f"{prefix}.columns.")
    for role in kind.roles:
        if role not in columns:
            raise ConfigError(
                f"panel kind {kind_name!r} needs a column for {role!r}",
                key=f"{prefix}.columns",
                source=doc.where(f"{prefix}.columns", f"{prefix}.kind"),
                fix=f"add {role}: <column> under columns",
            )
    for role, value in columns.items():
        _check_column(doc, value, f"{prefix}.columns.{role}", role in kind.lists)
    where = _where(doc, raw.get("where") or {}, f"{prefix}.where")
    for flag in ("log_x", "log_y"):
        if not isinstance(raw.get(flag, False), bool):
            raise ConfigError("expected true or false", key=f"{prefix}.{flag}", source=doc.where(f"{prefix}.{flag}"))
    _check_title(doc, raw.get("title", ""), f"{prefix}.title")
    return Panel(
        id=str(raw.get("id") or f"{kind_name}-{i}"),
        kind=kind_name,
        title=str(raw.get("title", "")),
        columns=dict(columns),
        log_x=raw.get("log_x", False),
        log_y=raw.get("log_y", False),
        note=str(raw.get("note", "")),
        where=where,
    )


def _check_title(doc: YamlDoc, title: Any, path: str) -> None:
    """A title may name {objective}, {objective_2} and {variant} (filled in with the study's words), nothing else."""
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(str(title)) if f is not None]
    except ValueError as e:
        raise ConfigError(
            f"bad braces in the title: {e}",
            key=path,
            source=doc.where(path),
            fix="write {objective}, {objective_2} or {variant}; a literal brace is {{ or }}",
        ) from None
    for name in fields:
        if name not in TITLE_FIELDS:
            raise ConfigError(
                f"unknown title field {{{name}}}",
                key=path,
                source=doc.where(path),
                fix=f"one of {', '.join('{' + f + '}' for f in TITLE_FIELDS)}; a literal brace is {{{{",
            )


def _where(doc: YamlDoc, where: Any, path: str) -> dict[str, list[Any]]:
    """{column: [values]}: the panel shows only the runs whose column holds one of the values."""
    if not isinstance(where, dict):
        raise ConfigError(
            "expected a mapping of column: [values]",
            key=path,
            source=doc.where(path),
            fix="e.g. where: {family: [diffusion]}",
        )
    for column in where:
        _check_column(doc, column, f"{path}.{column}", False)
        if column in TOKENS:
            raise ConfigError(
                "where takes result columns, not tokens",
                key=f"{path}.{column}",
                source=doc.where(f"{path}.{column}"),
                fix="e.g. family or config.gan.loss",
            )
    values = {c: v if isinstance(v, list) else [v] for c, v in where.items()}
    for column, listed in values.items():
        if any(isinstance(v, float) and math.isnan(v) for v in listed):  # NaN equals nothing, itself included
            raise ConfigError(
                "NaN matches no run",
                key=f"{path}.{column}",
                source=doc.where(f"{path}.{column}"),
                fix="list the values to keep, e.g. where: {family: [diffusion]}",
            )
    return values


def load_page(path: str | Path) -> PageDef:
    """One definition file; any unknown key, panel kind or column is a ConfigError naming file:line and key."""
    doc = load_yaml(path)
    _check_keys(doc, doc.data, PAGE_KEYS, "")
    name = doc.data.get("page")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(
            "expected a page name (letters, digits, '_')",
            key="page",
            source=doc.where("page"),
            fix="e.g. page: stability",
        )
    panels = doc.data.get("panels")
    if not isinstance(panels, list) or not panels:
        raise ConfigError(
            "expected a list of panels",
            key="panels",
            source=doc.where("panels"),
            fix="see genbench/dashboards/definitions/stability.yaml",
        )
    parsed = tuple(_panel(doc, raw, i) for i, raw in enumerate(panels))
    ids = [p.id for p in parsed]
    duplicate = next((x for x in ids if ids.count(x) > 1), None)
    if duplicate:
        raise ConfigError(
            f"panel id {duplicate!r} is used twice",
            key="panels",
            source=doc.where("panels"),
            fix="give each panel its own id",
        )
    order = doc.data.get("order", 100)
    if isinstance(order, bool) or not isinstance(order, int):  # int() of .nan, .inf or a word would raise
        raise ConfigError(
            f"expected an integer, got {order!r}",
            key="order",
            source=doc.where("order"),
            fix="e.g. order: 10 (pages are listed by it)",
        )
    _check_title(doc, doc.data.get("title", name), "title")
    return PageDef(
        name=name,
        title=str(doc.data.get("title", name)),
        order=order,
        intro=str(doc.data.get("intro", "")),
        panels=parsed,
        source=str(path),
    )


def load_pages(directory: str | Path | None = None) -> list[PageDef]:
    """Every definition file of a directory (default: $GENBENCH_DASHBOARDS, else the pages shipped in the package)."""
    given = directory or os.environ.get("GENBENCH_DASHBOARDS")
    directory = Path(given or DEFINITIONS)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(
            "no dashboard definitions (*.yaml) found",
            source=str(directory),
            fix="point GENBENCH_DASHBOARDS at a folder of definitions, or unset it for the shipped pages",
        )
    pages = sorted((load_page(f) for f in files), key=lambda p: (p.order, p.name))
    names = [p.name for p in pages]
    if "index" in names or len(set(names)) != len(names):
        raise ConfigError("page names must be unique and not 'index'", source=str(directory))
    return pages
