"""Study files: load, validate against the family's run keys, and resolve a budget into flat run settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.config import from_flat, valid_keys
from genbench.errors import ConfigError, suggest
from genbench.metrics.names import METRICS
from genbench.results.store import safe_name
from genbench.sweep.params import Param, parse_param
from genbench.yamlfile import YamlDoc, load_yaml

TOP_KEYS = ("study", "description", "family", "data", "objectives", "budget", "dry_run", "search",
            "resources", "fixed", "space")
ALGORITHMS = ("tpe", "random")


@dataclass
class Budget:
    trials: int
    steps: int
    eval_every: int  # evaluation cadence during training, in steps


@dataclass
class Study:
    """A validated study file."""

    name: str
    family: str
    objectives: list[tuple[str, str]]  # (metric, 'max' | 'min')
    budget: Budget
    dry_run: Budget
    fixed: dict[str, Any]  # flat run keys held constant (data.* included)
    space: dict[str, Param]  # flat run keys searched, in file order
    algorithm: str = "tpe"
    search_seed: int = 0
    max_concurrent: int = 0  # 0: as many as the CPUs allow
    cpus_per_trial: int = 1
    description: str = ""
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def run_settings(self, budget: Budget) -> dict[str, Any]:
        """Flat keys every trial of this budget gets: the fixed settings plus the budget's steps."""
        return {"family": self.family, **self.fixed, "train.steps": budget.steps,
                "eval.every": budget.eval_every, "train.threads": self.cpus_per_trial}


def _mapping(doc: YamlDoc, key: str, required: bool = True) -> dict[str, Any]:
    value = doc.data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", key=key, source=doc.where(key), fix=f"see search_spaces/ for '{key}:'")
    return value


def _int(doc: YamlDoc, section: str, mapping: dict[str, Any], key: str, default: int | None = None,
         minimum: int = 1) -> int:
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected an integer >= {minimum}, got {value!r}", key=f"{section}.{key}",
                          source=doc.where(f"{section}.{key}", section), fix=f"set {section}.{key}")
    return value


def _budget(doc: YamlDoc, key: str) -> Budget:
    raw = _mapping(doc, key)
    for name in raw:
        if name not in ("trials", "steps", "eval_every"):
            raise ConfigError("unknown budget key", key=f"{key}.{name}", source=doc.where(f"{key}.{name}"),
                              fix=suggest(str(name), ["trials", "steps", "eval_every"]))
    steps = _int(doc, key, raw, "steps")
    every = _int(doc, key, raw, "eval_every", max(steps // 10, 1))
    return Budget(trials=_int(doc, key, raw, "trials"), steps=steps, eval_every=every)


def _objectives(doc: YamlDoc) -> list[tuple[str, str]]:
    raw = doc.data.get("objectives")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a non-empty list", key="objectives", source=doc.where("objectives"),
                          fix="e.g. objectives: [{metric: quality.modes, mode: max}]")
    out = []
    for i, item in enumerate(raw):
        where = doc.where(f"objectives[{i}].metric", f"objectives[{i}]", "objectives")
        if not isinstance(item, dict) or item.get("mode") not in ("max", "min"):
            raise ConfigError("each objective needs metric and mode (max or min)", key=f"objectives[{i}]",
                              source=where, fix="write {metric: quality.modes, mode: max}")
        if item.get("metric") not in METRICS:
            raise ConfigError(f"unknown metric {item.get('metric')!r}", key=f"objectives[{i}].metric",
                              source=where, fix=suggest(str(item.get("metric")), METRICS))
        out.append((item["metric"], item["mode"]))
    return out


def _flat_settings(doc: YamlDoc) -> tuple[dict[str, Any], dict[str, str]]:
    """The study's fixed run keys ('data:' becomes data.*) and where each came from."""
    fixed = {f"data.{k}": v for k, v in _mapping(doc, "data").items()}
    where = {f"data.{k}": doc.where(f"data.{k}") for k in _mapping(doc, "data")}
    for key, value in _mapping(doc, "fixed", required=False).items():
        fixed[key], where[key] = value, doc.where(f"fixed.{key}")
    return fixed, where


def _space(doc: YamlDoc, family: str, fixed: dict[str, Any], where: dict[str, str]) -> dict[str, Param]:
    keys = set(valid_keys(family)) - {"family"}
    space: dict[str, Param] = {}
    for key, raw in _mapping(doc, "space").items():
        src = doc.where(f"space.{key}")
        if key not in keys:
            raise ConfigError(f"unknown key for family '{family}'", key=key, source=src, fix=suggest(key, keys))
        if key in fixed:
            raise ConfigError("is both fixed and searched", key=key, source=src, fix="remove it from one of them")
        space[key] = parse_param(key, raw, src, list(space))
        for value in space[key].probe_values():  # every choice and range end must make a valid run
            from_flat({"family": family, **fixed, key: value}, {**where, key: src})
    return space


def load_study(path: str | Path) -> Study:
    """Load and validate a study file; every problem is one ConfigError naming file:line and key."""
    doc = load_yaml(path)
    for key in doc.data:
        if key not in TOP_KEYS:
            raise ConfigError("unknown top-level key", key=str(key), source=doc.where(str(key)),
                              fix=suggest(str(key), TOP_KEYS))
    name = doc.data.get("study")
    if not isinstance(name, str):
        raise ConfigError("missing or not a string", key="study", source=doc.where("study"), fix="study: my_study")
    try:
        safe_name(name, "study")
    except ConfigError as exc:
        raise ConfigError(exc.problem, key="study", source=doc.where("study"), fix=exc.fix) from None
    family = doc.data.get("family", "gan")
    from genbench.families import FAMILIES

    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}", key="family", source=doc.where("family"),
                          fix=suggest(str(family), FAMILIES.names()))
    fixed, where = _flat_settings(doc)
    from_flat({"family": family, **fixed}, where)
    search = _mapping(doc, "search", required=False)
    resources = _mapping(doc, "resources", required=False)
    _check_keys(doc, "search", search, ("algorithm", "seed", "max_concurrent"))
    _check_keys(doc, "resources", resources, ("cpus_per_trial",))
    algorithm = search.get("algorithm", "tpe")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {algorithm!r}", key="search.algorithm",
                          source=doc.where("search.algorithm"), fix=suggest(str(algorithm), ALGORITHMS))
    return Study(name=name, family=family, objectives=_objectives(doc), budget=_budget(doc, "budget"),
                 dry_run=_budget(doc, "dry_run"), fixed=fixed, space=_space(doc, family, fixed, where),
                 algorithm=algorithm, search_seed=_int(doc, "search", search, "seed", 0, minimum=0),
                 max_concurrent=_int(doc, "search", search, "max_concurrent", 0, minimum=0),
                 cpus_per_trial=_int(doc, "resources", resources, "cpus_per_trial", 1),
                 description=str(doc.data.get("description", "")), source=doc.path, raw=doc.data)


def _check_keys(doc: YamlDoc, section: str, mapping: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"unknown key in {section}", key=f"{section}.{key}",
                              source=doc.where(f"{section}.{key}"), fix=suggest(str(key), allowed))
