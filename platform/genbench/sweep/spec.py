"""Study files: load, validate against the family's run keys, and resolve a budget into flat run settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.config import finite_number, from_flat
from genbench.errors import ConfigError, suggest
from genbench.metrics.names import METRICS
from genbench.results.names import safe_name
from genbench.shipped import edit_fix
from genbench.sweep.keys import check_key, family_sections, guard_fix, per_family_fix
from genbench.sweep.params import Param, families_of, parse_param
from genbench.sweep.space import DefineByRun
from genbench.sweep.tracking import parse_tracking
from genbench.yamlfile import YamlDoc, load_yaml, mapping_doc

TOP_KEYS = (
    "study",
    "description",
    "family",
    "data",
    "objectives",
    "success",
    "budget",
    "dry_run",
    "search",
    "resources",
    "results",
    "tracking",
    "fixed",
    "space",
)
ALGORITHMS = ("tpe", "random", "grid", "qmc", "nsga2")
SCHEDULERS = ("none", "asha")
SEARCH_KEYS = ("algorithm", "seed", "max_concurrent", "scheduler", "grace_evals", "families")
FAMILY_DRAWS = ("searched", "balanced")  # search.families: the family a searched choice, or each in turn
BUDGET_KEYS = ("trials", "steps", "device_s", "train_flops", "eval_every", "evals", "seeds")
STEP_CAP = 1_000_000_000  # the most steps of a run under a compute budget whose study sets no budget.steps
SEED_METRICS = ("stability.seed_std", "stability.seed_cv")  # need two seeds or more
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "workers", "gpus_per_worker", "placement", "max_failures")
PLACEMENTS = ("pack", "spread")
RESULTS_KEYS = ("save_models",)


@dataclass
class Budget:
    """What each configuration gets: trials proposed, seeds per trial, and each run's budget in one unit: steps, or
    compute (device_s device-seconds or train_flops FLOPs; `steps` is then the most steps a run may take)."""

    trials: int  # configurations the searcher proposes
    steps: int
    eval_every: int  # evaluation cadence during training, in steps (a steps budget)
    seeds: int = 1  # each configuration trains under seeds seed, seed + 1, ...; the searcher sees the aggregate
    device_s: float = 0.0  # a run trains until it has spent this many device-seconds (0: by steps)
    train_flops: float = 0.0  # a run trains for this many FLOPs of training steps (0: by steps)
    evals: int = 0  # evaluations spread evenly over the run (0: every eval_every steps; 10 under a compute budget)

    @property
    def unit(self) -> str:
        """steps | device_s | flops"""
        return "device_s" if self.device_s else "flops" if self.train_flops else "steps"

    @property
    def per_run(self) -> float:
        """One run's budget in its unit."""
        return {"device_s": self.device_s, "flops": self.train_flops, "steps": float(self.steps)}[self.unit]

    @property
    def time_attr(self) -> str:
        """The report key that says how much of its budget a trial has spent (a scheduler's time attribute)."""
        return {"device_s": "train.device_s", "flops": "train.flops", "steps": "step"}[self.unit]

    @property
    def eval_interval(self) -> float:
        """The budget between two evaluations, in the unit."""
        if self.unit == "steps":
            return float(max(1, self.steps // self.evals) if self.evals else self.eval_every)
        return self.per_run / (self.evals or 10)

    def describe(self) -> str:
        """'2000 steps', '60 device-s', '2e+12 FLOPs' (for progress lines and logs)."""
        return {"device_s": f"{self.device_s:g} device-s", "flops": f"{self.train_flops:g} FLOPs"}.get(
            self.unit, f"{self.steps} steps"
        )

    def run_keys(self) -> dict[str, Any]:
        """The flat run keys this budget sets on every trial."""
        keys: dict[str, Any] = {"train.steps": self.steps, "eval.every": self.eval_every}
        if self.unit == "device_s":
            keys["train.device_s"] = self.device_s
        if self.unit == "flops":
            keys["train.flops"] = self.train_flops
        if self.evals:
            keys["eval.count"] = self.evals
        return keys


@dataclass
class Study:
    """A validated study file."""

    name: str
    families: list[str]  # one family, or several compared on the same data and budget
    objectives: list[tuple[str, str]]  # (metric, 'max' | 'min')
    budget: Budget
    dry_run: Budget
    fixed: dict[str, Any]  # flat run keys held constant for every family (data.* included)
    space: dict[str, Param]  # flat run keys searched, in file order; `when: {family: [...]}` keeps one to some families
    algorithm: str = "tpe"
    scheduler: str = "none"  # 'asha': successive halving on the (single, quality.*) objective
    grace_evals: int = 2  # evaluations every trial gets before the scheduler may stop it
    # 'balanced': trial k trains family k mod F, so every family gets the same number of configurations (a fair
    # comparison); 'searched': the family is a choice the searcher makes like any other
    family_draw: str = "searched"
    search_seed: int = 0
    max_concurrent: int = 0  # 0: as many as the CPUs allow
    cpus_per_trial: int = 1  # CPUs (and torch threads) of each training process: the trial's, or each worker's
    gpus_per_trial: float | None = None  # GPU share of an in-process trial (per seed); None: chosen by the cluster
    workers: int = 1  # data-parallel Ray Train workers per trial; 1: the trial trains in its own process
    gpus_per_worker: float = 0.0  # > 0 also sends a one-worker trial through Ray Train
    placement: str = "pack"  # pack | spread: a trial's workers on few nodes, or one per node
    max_failures: int = 2  # retries of a trial whose process or node dies; data-parallel: worker-group restarts only
    success: tuple[str, str, float] | None = None  # (metric, 'at_least' | 'at_most', value) a successful seed reaches
    save_models: bool = True  # results.save_models: each finished run's model kept in models/<trial_id>.pt
    description: str = ""
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    family_fixed: dict[str, dict[str, Any]] = field(default_factory=dict)  # fixed: {vae: {...}}: one family's trials
    tracking: dict[str, dict[str, Any]] = field(default_factory=dict)  # tracker -> its options (sweep/tracking.py)

    @property
    def distributed(self) -> bool:
        """Whether trials train through Ray Train (several workers or GPUs) instead of in the trial process."""
        return self.workers > 1 or self.gpus_per_worker > 0

    @property
    def trial_cpus(self) -> int:
        """CPUs one trial's training holds (one seed at a time)."""
        return self.cpus_per_trial * (self.workers if self.distributed else 1)

    @property
    def family(self) -> str:
        """The family, or the families joined by '+' when a study compares several."""
        return "+".join(self.families)

    def example_run(self, budget: Budget, family: str) -> dict[str, Any]:
        """One run of `family` this study may make: its settings, with a value of every key searched for that family
        (a search decides them, but a fixed setting may need one, such as data.path for data.name 'files')."""
        searched = {
            k: p.probe_values()[0]
            for k, p in self.space.items()
            if k != "family" and family in families_of(p, self.space, self.families)
        }
        return {**searched, **self.run_settings(budget), **self.family_fixed.get(family, {}), "family": family}

    def run_settings(self, budget: Budget) -> dict[str, Any]:
        """Flat keys every trial of this budget gets: the fixed settings plus the budget's steps (and, in a study of
        one family, its family section; in a study of several, define_by_run adds each trial's)."""
        single = {"family": self.families[0]} if len(self.families) == 1 else {}  # else the space chooses it
        own = self.family_fixed.get(self.families[0], {}) if single else {}
        return {
            **single,
            **self.fixed,
            **own,
            **budget.run_keys(),
            "train.threads": self.cpus_per_trial,
        }

    def fixed_for(self, family: str) -> dict[str, Any]:
        """The fixed keys of one family's trials: the shared ones, then its own section's."""
        return {**self.fixed, **self.family_fixed.get(family, {})}

    def define_by_run(self, constants: dict[str, Any]) -> DefineByRun:
        """The search space as Optuna's define-by-run function: `constants` (run_settings and overrides), each trial's
        family section, and the keys searched for its family."""
        several = len(self.families) > 1
        balanced = tuple(self.families) if several and self.family_draw == "balanced" else ()
        return DefineByRun(self.space, constants, self.family_fixed if several else {}, balanced)


def _mapping(doc: YamlDoc, key: str, required: bool = True) -> dict[str, Any]:
    value = doc.data.get(key)
    if value is None and not required:
        return {}
    if value is None:  # absent, or `key:` with nothing after it
        raise ConfigError(
            "missing section" if key not in doc.data else "empty section",
            key=key,
            source=doc.where(key),
            fix=f"add '{key}:'; see the shipped studies (genbench copy-study NAME)",
        )
    if not isinstance(value, dict):
        raise ConfigError(
            "expected a mapping",
            key=key,
            source=doc.where(key),
            fix=f"see '{key}:' in the shipped studies (genbench copy-study NAME)",
        )
    return value


def _int(
    doc: YamlDoc, section: str, mapping: dict[str, Any], key: str, default: int | None = None, minimum: int = 1
) -> int:
    value = mapping.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"expected an integer >= {minimum}, got {value!r}",
            key=f"{section}.{key}",
            source=doc.where(f"{section}.{key}", section),
            fix=f"set {section}.{key}",
        )
    return value


def _budget(doc: YamlDoc, key: str) -> Budget:
    raw = _mapping(doc, key)
    _check_keys(doc, key, raw, BUDGET_KEYS)
    compute = [k for k in ("device_s", "train_flops") if k in raw]
    if len(compute) > 1 or (not compute and "steps" not in raw):
        raise ConfigError(
            "set both device_s and train_flops" if compute else "missing its run budget",
            key=f"{key}.{compute[-1] if compute else 'steps'}",
            source=doc.where(f"{key}.{compute[-1]}" if compute else key, key),
            fix="give each run one budget: steps, device_s (device-seconds) or train_flops",
        )
    if compute and "eval_every" in raw:
        raise ConfigError(
            "eval_every counts steps; a compute budget spaces evaluations by its own unit",
            key=f"{key}.eval_every",
            source=doc.where(f"{key}.eval_every", key),
            fix=f"set {key}.evals (evaluations over each run; default 10)",
        )
    steps = _int(doc, key, raw, "steps", STEP_CAP)
    every = _int(doc, key, raw, "eval_every", max(steps // 10, 1))
    return Budget(
        trials=_int(doc, key, raw, "trials"),
        steps=steps,
        eval_every=every,
        seeds=_int(doc, key, raw, "seeds", 1),
        device_s=_positive(doc, key, raw, "device_s"),
        train_flops=_positive(doc, key, raw, "train_flops"),
        evals=_int(doc, key, raw, "evals", 0, minimum=0),
    )


def _positive(doc: YamlDoc, section: str, mapping: dict[str, Any], key: str) -> float:
    """A compute budget: absent (0) or a finite number > 0 (YAML reads 2e12 as a string: it is accepted)."""
    value = mapping.get(key, 0.0)
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if key in mapping and not (finite_number(number) and number > 0):
        raise ConfigError(
            f"expected a number > 0, got {value!r}",
            key=f"{section}.{key}",
            source=doc.where(f"{section}.{key}", section),
            fix=f"set {section}.{key}: 60 (device-seconds) or 2.0e12 (FLOPs)",
        )
    return number if key in mapping else 0.0


def _objectives(doc: YamlDoc) -> list[tuple[str, str]]:
    raw = doc.data.get("objectives")
    if raw is None:
        raise ConfigError(
            "missing section" if "objectives" not in doc.data else "empty section",
            key="objectives",
            source=doc.where("objectives"),
            fix="e.g. objectives: [{metric: quality.modes, mode: max}]",
        )
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "expected a non-empty list",
            key="objectives",
            source=doc.where("objectives"),
            fix="e.g. objectives: [{metric: quality.modes, mode: max}]",
        )
    out = []
    for i, item in enumerate(raw):
        where = doc.where(f"objectives[{i}].metric", f"objectives[{i}]", "objectives")
        if not isinstance(item, dict) or item.get("mode") not in ("max", "min"):
            raise ConfigError(
                "each objective needs metric and mode (max or min)",
                key=f"objectives[{i}]",
                source=where,
                fix="write {metric: quality.modes, mode: max}",
            )
        if item.get("metric") not in METRICS:
            raise ConfigError(
                f"unknown metric {item.get('metric')!r}",
                key=f"objectives[{i}].metric",
                source=where,
                fix=suggest(str(item.get("metric")), METRICS),
            )
        out.append((item["metric"], item["mode"]))
    return out


def _success(doc: YamlDoc) -> tuple[str, str, float] | None:
    """success: {metric: quality.modes, at_least: 20}: the quality a seed must reach to count as a success."""
    raw = doc.data.get("success")
    if raw is None:
        return None
    fix = "write success: {metric: quality.modes, at_least: 20} (or at_most: for a metric to minimise)"
    if not isinstance(raw, dict) or len(raw) != 2 or "metric" not in raw:
        raise ConfigError("expected a metric and one bound", key="success", source=doc.where("success"), fix=fix)
    _check_keys(doc, "success", raw, ("metric", "at_least", "at_most"))
    side = "at_least" if "at_least" in raw else "at_most"
    bound = raw[side]
    if raw["metric"] not in METRICS:
        raise ConfigError(
            f"unknown metric {raw['metric']!r}",
            key="success.metric",
            source=doc.where("success.metric", "success"),
            fix=suggest(str(raw["metric"]), METRICS),
        )
    if not finite_number(bound):
        raise ConfigError(
            f"expected a number, got {bound!r}",
            key=f"success.{side}",
            source=doc.where(f"success.{side}", "success"),
            fix=fix,
        )
    return raw["metric"], side, float(bound)


@dataclass
class _Fixed:
    """A study's fixed run keys as written: shared by every family ('data:' becomes data.*), and per family."""

    shared: dict[str, Any]
    by_family: dict[str, dict[str, Any]]
    where: dict[str, str]  # flat key -> 'file:line' of the shared keys
    doc: YamlDoc

    def run(self, family: str, more: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """One run of `family` with these settings (and `more`), and where each key was written, for from_flat."""
        own = self.by_family.get(family, {})
        where = {**self.where, **{k: self.doc.where(f"fixed.{family}.{k}") for k in own}}
        return {"family": family, **self.shared, **own, **(more or {})}, where


def _flat_settings(doc: YamlDoc, families: list[str]) -> _Fixed:
    """The study's fixed run keys, each checked against the families whose trials get it."""
    data = _mapping(doc, "data")
    fixed = _Fixed(
        {f"data.{k}": v for k, v in data.items()}, {}, {f"data.{k}": doc.where(f"data.{k}") for k in data}, doc
    )
    raw = _mapping(doc, "fixed", required=False)
    fixed.by_family = family_sections(doc, raw, families)
    for key, value in raw.items():
        if key not in fixed.by_family:
            fixed.shared[key], fixed.where[key] = value, doc.where(f"fixed.{key}")
            check_key(key, families, families, fixed.where[key], per_family_fix(str(key)), value)
    for family in families:
        from_flat(*fixed.run(family))
    return fixed


def _space(doc: YamlDoc, families: list[str], fixed: _Fixed) -> dict[str, Param]:
    """The searched keys; a study over several families searches `family` first, then keys of the families each
    entry's `when: {family: [...]}` names (of every family without one)."""
    space: dict[str, Param] = {"family": Param("choice", values=list(families))} if len(families) > 1 else {}
    for key, raw in _mapping(doc, "space").items():
        src = doc.where(f"space.{key}")
        if key == "family":
            raise ConfigError(
                "is the study's family:, searched first when it lists several",
                key=key,
                source=src,
                fix="list the families in family: [vae, flow]",
            )
        param = parse_param(key, raw, src, space)
        takers = families_of(param, space, families)
        if not takers:
            raise ConfigError(
                "its 'when' holds for no family's trials",
                key=key,
                source=src,
                fix="condition it on values of parameters that the same family's trials draw",
            )
        check_key(key, takers, families, src, guard_fix, raw)
        _check_not_fixed(key, takers, fixed, src)
        space[key] = param
        for family, value in ((f, v) for f in takers for v in param.probe_values()):
            run, where = fixed.run(family, {key: value})
            from_flat(run, {**where, key: src})  # each must make a valid run
    return space


def _check_not_fixed(key: str, takers: list[str], fixed: _Fixed, source: str) -> None:
    both = [f for f in takers if key in fixed.by_family.get(f, {})]
    if key in fixed.shared or both:
        what = f"fixed for {', '.join(both)}" if both and key not in fixed.shared else "fixed"
        raise ConfigError(f"is both {what} and searched", key=key, source=source, fix="remove it from one of them")


def _families(doc: YamlDoc) -> list[str]:
    from genbench.families import FAMILIES

    raw = doc.data.get("family", "gan")
    families = raw if isinstance(raw, list) and raw else [raw]
    for family in families:
        if family not in FAMILIES:
            raise ConfigError(
                f"unknown family {family!r}",
                key="family",
                source=doc.where("family"),
                fix=suggest(str(family), FAMILIES.names()),
            )
    if len(set(families)) != len(families):
        raise ConfigError("a family is listed twice", key="family", source=doc.where("family"), fix="list each once")
    return families


def _study_name(doc: YamlDoc) -> str:
    name = doc.data.get("study")
    if not isinstance(name, str):
        raise ConfigError(
            "missing" if "study" not in doc.data else f"expected a name, got {name!r}",
            key="study",
            source=doc.where("study"),
            fix="study: my_study",
        )
    try:
        return safe_name(name, "study")
    except ConfigError as exc:
        raise ConfigError(exc.problem, key="study", source=doc.where("study"), fix=exc.fix) from None


def _save_models(doc: YamlDoc) -> bool:
    """results: {save_models: false} keeps no model of any run (the default keeps every finished run's)."""
    raw = _mapping(doc, "results", required=False)
    _check_keys(doc, "results", raw, RESULTS_KEYS)
    value = raw.get("save_models", True)
    if not isinstance(value, bool):
        raise ConfigError(
            f"expected true or false, got {value!r}",
            key="results.save_models",
            source=doc.where("results.save_models", "results"),
            fix="results: {save_models: false} keeps no models; true (the default) keeps every finished run's",
        )
    return value


def _choice(doc: YamlDoc, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"unknown value {value!r}", key=key, source=doc.where(key), fix=suggest(str(value), allowed))
    return str(value)


def load_study(path: str | Path) -> Study:
    """Load and validate a study file; every problem is one ConfigError naming file:line and key."""
    return _study(load_yaml(path))


STUDY_DICT = "study dict"  # where errors in a study given as a mapping say they are (it has no file or lines)


def study_from_dict(data: dict[str, Any], source: str = STUDY_DICT) -> Study:
    """A study given as a mapping with a study file's content (the Python API's), validated as a file is; every
    problem is one ConfigError naming `source` and the key. Its values must be plain YAML data."""
    return _study(mapping_doc(data, source))


def _study(doc: YamlDoc) -> Study:
    """The validated study of a loaded study file or mapping."""
    _check_keys(doc, "", doc.data, TOP_KEYS)
    name, families = _study_name(doc), _families(doc)
    fixed = _flat_settings(doc, families)
    search = _mapping(doc, "search", required=False)
    _check_keys(doc, "search", search, SEARCH_KEYS)
    resources = parse_resources(doc, "resources", _mapping(doc, "resources", required=False))
    study = Study(
        name=name,
        families=families,
        objectives=_objectives(doc),
        budget=_budget(doc, "budget"),
        dry_run=_budget(doc, "dry_run"),
        fixed=fixed.shared,
        space=_space(doc, families, fixed),
        algorithm=_choice(doc, "search.algorithm", search.get("algorithm", "tpe"), ALGORITHMS),
        scheduler=_choice(doc, "search.scheduler", search.get("scheduler", "none"), SCHEDULERS),
        grace_evals=_int(doc, "search", search, "grace_evals", 2),
        family_draw=_choice(doc, "search.families", search.get("families", "searched"), FAMILY_DRAWS),
        search_seed=_int(doc, "search", search, "seed", 0, minimum=0),
        max_concurrent=_int(doc, "search", search, "max_concurrent", 0, minimum=0),
        **resources,
        success=_success(doc),
        save_models=_save_models(doc),
        description=str(doc.data.get("description", "")),
        source=doc.path,
        raw=doc.data,
        family_fixed=fixed.by_family,
        tracking=parse_tracking(doc),
    )
    _check_search(doc, study)
    _check_workers(doc, study)
    return study


def parse_resources(doc: YamlDoc, section: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A study's `resources:` (or a cluster profile's `trial_resources:`), validated, with the defaults filled in."""
    _check_keys(doc, section, raw, RESOURCE_KEYS)
    placement = raw.get("placement", "pack")
    if placement not in PLACEMENTS:
        raise ConfigError(
            f"unknown value {placement!r}",
            key=f"{section}.placement",
            source=doc.where(f"{section}.placement", section),
            fix=suggest(str(placement), PLACEMENTS),
        )
    out = {
        "cpus_per_trial": _int(doc, section, raw, "cpus_per_trial", 1),
        "gpus_per_trial": _gpus(doc, section, raw, "gpus_per_trial", None),
        "workers": _int(doc, section, raw, "workers", 1),
        "gpus_per_worker": _gpus(doc, section, raw, "gpus_per_worker", 0.0),
        "placement": placement,
        "max_failures": _int(doc, section, raw, "max_failures", 2, minimum=0),
    }
    if out["gpus_per_trial"] and (out["workers"] > 1 or out["gpus_per_worker"]):
        raise ConfigError(
            "a data-parallel trial's GPUs are its workers'",
            key=f"{section}.gpus_per_trial",
            source=doc.where(f"{section}.gpus_per_trial", section),
            fix="use gpus_per_worker with workers (or gpus_per_trial with workers: 1)",
        )
    return out


def _gpus(doc: YamlDoc, section: str, raw: dict[str, Any], key: str, default: float | None) -> float | None:
    """A GPU count for Ray: a fraction below 1 packs trials on one GPU; above 1 it must be whole (Ray's rule)."""
    value = raw.get(key, default)
    if value is None:
        return None
    fine = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")
    if not fine or (value > 1 and value != int(value)):
        raise ConfigError(
            f"expected a number >= 0 (a fraction below 1, or whole GPUs), got {value!r}",
            key=f"{section}.{key}",
            source=doc.where(f"{section}.{key}", section),
            fix=f"e.g. {key}: 0.25 (four trials share one GPU) or {key}: 1",
        )
    return float(value)


def fill_resources(study: Study, defaults: dict[str, Any], source: str) -> list[str]:
    """Set the resource keys the study's own `resources:` leaves out from a cluster profile's `trial_resources`
    (already validated); returns the keys filled. The combined request is checked as the study's would be."""
    given = dict(study.raw.get("resources") or {})
    filled = [k for k in defaults if k not in given]
    parsed = parse_resources(YamlDoc(source, {}), "trial_resources", {k: defaults[k] for k in filled})
    for key in filled:
        setattr(study, key, parsed[key])
    study.raw = {**study.raw, "resources": {**given, **{k: defaults[k] for k in filled}}}
    if study.gpus_per_trial and study.distributed:
        raise ConfigError(
            "a data-parallel trial's GPUs are its workers'",
            key="trial_resources.gpus_per_trial",
            source=source,
            fix="set resources.gpus_per_trial: 0 in the study, or use gpus_per_worker",
        )
    return filled


def check_local_data(study: Study) -> None:
    """`validate`'s light check of a study's own data files (no data is read): a data.path that does not exist
    here. A relative path is taken from the directory genbench runs in, as dry-run and sweep take it."""
    path = study.fixed.get("data.path")
    if study.fixed.get("data.name") != "files" or not isinstance(path, str) or "://" in path:
        return
    if not Path(path).expanduser().exists():
        doc = load_yaml(study.source) if study.source else YamlDoc("", {})
        raise ConfigError(
            f"no such file or folder {path!r} (relative paths start in {Path.cwd()})",
            key="data.path",
            source=doc.where("data.path", "fixed.data.path"),
            fix="give the folder of images, the .npy/.npz file or the Parquet file of the data set",
        )


def set_resources(study: Study, overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply the `--set resources.KEY=VALUE` overrides to the study (validated as its `resources:` section would be);
    returns the other overrides, the run keys."""
    given = {k.removeprefix("resources."): v for k, v in overrides.items() if k.startswith("resources.")}
    if given:
        merged = {**(study.raw.get("resources") or {}), **given}
        resources = parse_resources(YamlDoc("--set", {"resources": merged}), "resources", merged)
        for key, value in resources.items():
            setattr(study, key, value)
        study.raw = {**study.raw, "resources": merged}
        _check_workers(YamlDoc("--set", {}), study)
    return {k: v for k, v in overrides.items() if not k.startswith("resources.")}


def check_overrides(study: Study, budget: Budget, overrides: dict[str, Any]) -> None:
    """The --set run keys of a sweep, checked before anything is moved or written: a searched key or the family
    cannot be fixed from the command line, and every family's run with the overrides must be valid."""
    for key in overrides:
        sections = [f for f, own in study.family_fixed.items() if key in own]
        if key in study.space or key == "family" or sections:
            what = (
                "searched by the study"
                if key in study.space
                else "the study's family:"
                if key == "family"
                else f"fixed for {', '.join(sections)} by the study"
            )
            raise ConfigError(
                f"is {what}; --set would replace it in every trial",
                key=key,
                source="--set",
                fix=edit_fix(key, study.source),
            )
        check_key(
            key, study.families, study.families, "--set", per_family_fix(key, " in the study file"), overrides[key]
        )
    where = dict.fromkeys(overrides, "--set")
    for family in study.families:
        from_flat({**study.example_run(budget, family), **overrides}, where)


def _check_workers(doc: YamlDoc, study: Study) -> None:
    """Data-parallel trials: every batch size splits evenly over the workers."""
    if study.workers == 1:
        return
    searched = study.space.get("train.batch_size")
    batches = (
        searched.grid_values()
        if searched is not None
        else [from_flat({"family": f, **study.fixed_for(f)}).train.batch_size for f in study.families]
    )
    for batch in batches:
        if int(batch) % study.workers:
            key = "space.train.batch_size" if searched is not None else "fixed.train.batch_size"
            raise ConfigError(
                f"train.batch_size {batch} does not split over {study.workers} workers",
                key="resources.workers",
                source=doc.where(key, "resources.workers"),
                fix=f"use batch sizes that are multiples of {study.workers}",
            )


def _check_balanced(doc: YamlDoc, study: Study) -> None:
    """search.families: balanced needs several families and trials that split evenly over them."""
    if len(study.families) < 2:
        raise ConfigError(
            "balanced families need a study of several families",
            key="search.families",
            source=doc.where("search.families"),
            fix="list several in family:, or drop search.families",
        )
    if study.algorithm == "grid":
        raise ConfigError(
            "a grid already gives every family each of its points",
            key="search.families",
            source=doc.where("search.families"),
            fix="drop search.families, or use algorithm: random",
        )
    for key in ("budget", "dry_run"):
        trials, count = getattr(study, key).trials, len(study.families)
        if trials % count:
            raise ConfigError(
                f"{trials} trials do not split evenly over {count} families",
                key=f"{key}.trials",
                source=doc.where(f"{key}.trials", key),
                fix=f"use a multiple of {count}, e.g. {max(count, trials - trials % count)}",
            )


def _check_search(doc: YamlDoc, study: Study) -> None:
    """Combinations the searcher cannot honour: each is an error now rather than a surprise mid-sweep."""
    metrics = [m for m, _ in study.objectives]
    if study.family_draw == "balanced":
        _check_balanced(doc, study)
    if study.algorithm == "grid":
        try:
            grid_space(study.space)
        except ConfigError as exc:
            raise ConfigError(exc.problem, key=exc.key, source=doc.where(f"space.{exc.key}"), fix=exc.fix) from None
    for key in ("budget", "dry_run"):
        budget = getattr(study, key)
        if budget.seeds < 2 and any(m in SEED_METRICS for m in metrics):
            raise ConfigError(
                f"objective {next(m for m in metrics if m in SEED_METRICS)} needs >= 2 seeds",
                key=f"{key}.seeds",
                source=doc.where(f"{key}.seeds", key),
                fix=f"set {key}.seeds: 3",
            )
        if study.algorithm == "grid" and budget.trials > grid_size(study.space):
            raise ConfigError(
                f"the grid has {grid_size(study.space)} points, fewer than {budget.trials} trials",
                key=f"{key}.trials",
                source=doc.where(f"{key}.trials", key),
                fix=f"set {key}.trials to at most {grid_size(study.space)}",
            )
    if study.scheduler == "asha" and (len(metrics) != 1 or not metrics[0].startswith("quality.")):
        raise ConfigError(
            "asha needs one objective measured during training (a quality.* metric)",
            key="search.scheduler",
            source=doc.where("search.scheduler"),
            fix="use one quality.* objective, or scheduler: none",
        )


def grid_space(space: dict[str, Param]) -> dict[str, list[Any]]:
    """Every parameter's grid values; ranges need a step (ints step 1 by default)."""
    grid: dict[str, list[Any]] = {}
    for key, param in space.items():
        if param.kind == "float" and param.step is None:
            raise ConfigError(
                "grid search needs choices or stepped ranges",
                key=key,
                fix="add step: to this float range, or use algorithm tpe / random / qmc",
            )
        grid[key] = param.grid_values()
    return grid


def grid_size(space: dict[str, Param]) -> int:
    size = 1
    for values in grid_space(space).values():
        size *= len(values)
    return size


def _check_keys(doc: YamlDoc, section: str, mapping: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            name = f"{section}.{key}" if section else str(key)
            raise ConfigError(
                f"unknown key in {section or 'the study'}",
                key=name,
                source=doc.where(name),
                fix=suggest(str(key), allowed),
            )
