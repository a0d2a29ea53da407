"""Typed run configuration built from one flat dict of dotted keys; from_flat / to_flat are the only conversions."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Iterable
from typing import Any

from genbench.data.names import DATA_KEYS
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.sections import DataConfig, EvalConfig, RunConfig, Switch, TrainConfig, switch


def field_types(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(value: Any, kind: type, key: str) -> Any:
    """Check (and losslessly convert) one value to a field's type; bools are never numbers."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and not isinstance(value, bool):
        number = _number(value)
        if number is not None and not math.isfinite(number):  # NaN passes every `x > 0` check: refuse it here, once
            raise ConfigError(
                f"expected a finite number, got {value!r}",
                key=key,
                fix="give a number such as 1e-3; nan and inf are not allowed",
            )
        if number is not None:
            return number
    if kind is str and isinstance(value, str):
        return value
    if kind is Switch:
        return switch(value, key)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise ConfigError(
        f"expected {names.get(kind, kind.__name__)}, got {type(value).__name__} {value!r}",
        key=key,
        fix=f"give {names.get(kind, kind.__name__)}",
    )


def _number(value: Any) -> float | None:
    """A float from a number or a numeric string (PyYAML reads 1e-4, without a dot, as a string), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None
    except OverflowError:  # an integer beyond any float
        return math.inf


def finite_number(value: Any) -> bool:
    """Whether a YAML value is a number (not a bool) with a finite float value; NaN fails every comparison, so
    checks such as `x > 0` or `x < 0` alone let it through."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(_number(value) or 0.0)


def section_from_flat(cls: type, prefix: str, flat: dict[str, Any], where: dict[str, str]) -> Any:
    """Build one section dataclass from the flat keys '<prefix>.<field>'; errors name the key and its source."""
    types = field_types(cls)
    kwargs: dict[str, Any] = {}
    for name, kind in types.items():
        key = f"{prefix}.{name}"
        if key in flat:
            try:
                kwargs[name] = coerce(flat[key], kind, key)
            except ConfigError as exc:
                raise ConfigError(exc.problem, key=key, source=where.get(key, ""), fix=exc.fix) from None
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        key = f"{prefix}.{exc.key}" if exc.key else prefix
        raise ConfigError(exc.problem, key=key, source=where.get(key, where.get("", "")), fix=exc.fix) from None


def section_to_flat(obj: Any, prefix: str) -> dict[str, Any]:
    return {f"{prefix}.{f.name}": getattr(obj, f.name) for f in dataclasses.fields(obj)}


# Keys the one optimiser section of results schema 2 renamed (flow, autoregressive): refused for one release with
# their new name and the value to write there, so that an old study file cannot run with a setting silently dropped
RENAMED = {"optim.cosine": "optim.lr_decay", "optim.warmup": "optim.warmup_steps"}


def renamed_value(key: str, value: Any) -> Any:
    """An old key's value as its new key takes it; in a study's search entry ({choice: [...]}), each choice."""
    if isinstance(value, dict):
        return {
            k: [renamed_value(key, c) for c in v] if k == "choice" and isinstance(v, list) else v
            for k, v in value.items()
        }
    if key == "optim.cosine" and isinstance(value, bool):
        return "cosine" if value else "none"
    return value


def check_renamed(key: str, value: Any, source: str = "") -> None:
    """A renamed key is one ConfigError naming its new name and the value to write there."""
    if key not in RENAMED:
        return
    new, shown = RENAMED[key], _flow_yaml(renamed_value(key, value))
    fix = f"write --set {new}={shown}" if source == "--set" else f"write {new}: {shown}"
    raise ConfigError(
        f"renamed to {new} (results schema 2: one optimiser section in every family)", key=key, source=source, fix=fix
    )


def _flow_yaml(value: Any) -> str:
    """A value as YAML's flow style writes it: true, [cosine, none], {choice: [0, 100]}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow_yaml(v) for v in value) + "]"
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def key_fix(key: str, valid: Iterable[str], families: list[str]) -> str:
    """The fix for an unknown run key: the family it belongs to, the closest valid key, or every valid key of its
    section (never cut off) and the command that lists them all."""
    valid = sorted(valid)
    section, dot, _ = key.partition(".")
    sections = sorted({k.partition(".")[0] for k in valid})
    listing = " or ".join(f"`genbench list keys {f}`" for f in families)
    if dot and section not in sections and section in FAMILIES:
        return f"{section}.* keys belong to family '{section}'; {listing} lists the keys here"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    same = [k for k in valid if k.startswith(f"{section}.")] if dot else []
    if same:
        return f"the {section}.* keys are {', '.join(same)}"
    return (
        f"run keys are {', '.join(s if s in ('family', 'seed') else s + '.*' for s in sections)}; "
        f"{listing} lists them all"
    )


def unused_data_keys(flat: dict[str, Any]) -> list[str]:
    """The data.* keys of a resolved run that its data set does not read (a folder of images is split by
    data.test_fraction, so data.n_train / data.n_test keep defaults that say nothing about it)."""
    reads = DATA_KEYS.get(str(flat.get("data.name")))
    if reads is None:
        return []
    return [k for k in flat if k.startswith("data.") and k != "data.name" and k.removeprefix("data.") not in reads]


def resolved_text(flat: dict[str, Any]) -> str:
    """A resolved run as `genbench train` prints it: JSON of its keys, less the data.* keys its data set does not
    read, which are named after it (a folder of images showed data.n_train 50000 that said nothing about it)."""
    import json

    unused = unused_data_keys(flat)
    text = json.dumps({k: v for k, v in flat.items() if k not in unused}, indent=2)
    if not unused:
        return text
    split = (
        "; its test split is data.test_fraction of the examples (of images: at least 150, at most a quarter), "
        "the rest trains"
        if "test_fraction" in DATA_KEYS.get(str(flat.get("data.name")), ())
        else ""
    )
    return f"{text}\n(not read by data set '{flat.get('data.name')}': {', '.join(unused)}{split})"


def valid_keys(family: str) -> list[str]:
    """Every flat key a run of this family accepts."""
    return list(to_flat(from_flat({"family": family})))


def from_flat(flat: dict[str, Any], where: dict[str, str] | None = None) -> RunConfig:
    """Typed RunConfig from a flat dict; unknown keys and wrong types raise ConfigError with a suggestion.

    `where` maps a flat key to where it came from ('study.yaml:12', '--set'), used in error messages.
    """
    where = where or {}
    family = flat.get("family", "gan")
    try:
        spec = FAMILIES.get(family, key="family")
    except ConfigError as exc:
        raise ConfigError(exc.problem, key="family", source=where.get("family", ""), fix=exc.fix) from None
    sections = {
        "data": DataConfig,
        "train": TrainConfig,
        "eval": EvalConfig,
        family: spec.model_config,
        "optim": spec.optim_config,
    }
    known = {"family", "seed"} | {f"{p}.{n}" for p, c in sections.items() for n in field_types(c)}
    for key in flat:
        if key in RENAMED and RENAMED[key] in known:
            check_renamed(key, flat[key], where.get(key, ""))
        if key not in known:
            raise ConfigError(
                f"unknown key for family '{family}'",
                key=key,
                source=where.get(key, ""),
                fix=key_fix(str(key), known, [family]),
            )
    try:
        seed = coerce(flat.get("seed", 0), int, "seed")
    except ConfigError as exc:
        raise ConfigError(exc.problem, key="seed", source=where.get("seed", ""), fix=exc.fix) from None
    flat = {**spec.defaults, **flat}  # the family's default budget, under anything given explicitly
    built = {p: section_from_flat(c, p, flat, where) for p, c in sections.items()}
    cfg = RunConfig(
        family=family,
        seed=seed,
        data=built["data"],
        train=built["train"],
        eval=built["eval"],
        model=built[family],
        optim=built["optim"],
    )
    try:
        spec.check(cfg)
    except ConfigError as exc:
        raise ConfigError(exc.problem, key=exc.key, source=where.get(exc.key, ""), fix=exc.fix) from None
    return cfg


def to_flat(cfg: RunConfig) -> dict[str, Any]:
    """The flat dict of every key of a run, defaults included: the `config.*` columns of the results."""
    flat: dict[str, Any] = {"family": cfg.family, "seed": cfg.seed}
    for prefix, obj in (
        ("data", cfg.data),
        ("train", cfg.train),
        ("eval", cfg.eval),
        (cfg.family, cfg.model),
        ("optim", cfg.optim),
    ):
        flat.update(section_to_flat(obj, prefix))
    return flat


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """Command-line overrides 'k=v' (values parsed as YAML scalars: 1e-3, true, hinge; the last of a repeated key
    wins); a value that is not valid YAML is a ConfigError naming the key."""
    from genbench.yamlfile import parse_yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {pair!r}", source="--set", fix="write --set train.steps=500")
        try:
            out[key] = parse_yaml(text, "--set")[0] if text.strip() else ""
        except ConfigError as exc:
            raise ConfigError(
                f"cannot read {text!r}: {exc.problem}",
                key=key,
                source="--set",
                fix="quote a value with YAML's special characters, e.g. --set 'data.path=\"a[1].png\"'",
            ) from exc
    return out
