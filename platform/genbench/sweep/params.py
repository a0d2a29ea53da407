"""One searched parameter of a study: a choice, a float or an int range, optionally conditional ('when')."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from genbench.config import finite_number
from genbench.errors import ConfigError, suggest

KINDS = ("choice", "float", "int")
OPTIONS = (*KINDS, "log", "step", "when")


@dataclass
class Param:
    """A searched key: kind 'choice' (values) or 'float'/'int' (low, high, log, step); active only `when`."""

    kind: str
    values: list[Any] = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    when: dict[str, list[Any]] = field(default_factory=dict)  # active iff every named param took a listed value

    def probe_values(self) -> list[Any]:
        """Values that must each make a valid run: every choice, both range ends."""
        if self.kind == "choice":
            return list(self.values)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def grid_values(self) -> list[Any]:
        """The points a grid search visits: every choice, or low..high by step (step 1 for ints)."""
        if self.kind == "choice":
            return list(self.values)
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        cast = int if self.kind == "int" else float
        return [cast(self.low + i * step) for i in range(count)]

    def active(self, chosen: dict[str, Any]) -> bool:
        return all(k in chosen and chosen[k] in vals for k, vals in self.when.items())

    def suggest(self, trial: Any, key: str) -> Any:
        """Draw this parameter from an Optuna trial (or Ray's captor of one)."""
        if self.kind == "choice":
            return trial.suggest_categorical(key, self.values)
        if self.kind == "int":
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(key, self.low, self.high, log=self.log, step=self.step)


def _fail(problem: str, key: str, source: str, fix: str) -> ConfigError:
    return ConfigError(problem, key=key, source=source, fix=fix)


def _range(kind: str, key: str, raw: Any, log: bool, source: str) -> tuple[float, float]:
    ok_types = (int,) if kind == "int" else (int, float)
    if not (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(v, ok_types) and not isinstance(v, bool) for v in raw)
    ):
        raise _fail(
            f"'{kind}' needs [low, high] as numbers, got {raw!r}",
            key,
            source,
            f"write {{{kind}: [1, 10]}}" + (" with integers" if kind == "int" else " (1.0e-4, not 1e-4)"),
        )
    low, high = raw
    if not (finite_number(low) and finite_number(high)) or low >= high:
        raise _fail(f"empty or inverted range [{low}, {high}]", key, source, "low must be below high")
    if log and low <= 0:
        raise _fail(f"log range must be positive, got low={low}", key, source, "use a low > 0 or drop log: true")
    return low, high


def _when(key: str, raw: Any, source: str, earlier: dict[str, Param]) -> dict[str, list[Any]]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(
            "'when' needs a mapping of parameter -> allowed values",
            key,
            source,
            "write when: {gan.penalty: [gradient_penalty, r1]}",
        )
    out = {}
    for name, values in raw.items():
        if name not in earlier:
            fix = (
                "a study of one family needs no family guard: drop it"
                if name == "family"
                else suggest(str(name), earlier)
                if earlier
                else "condition only on parameters listed earlier"
            )
            raise _fail(f"'when' names {name!r}, which is not a searched parameter above this one", key, source, fix)
        out[name] = values if isinstance(values, list) else [values]
        _check_when_values(key, name, out[name], earlier[name], source)
    return out


def _check_when_values(key: str, name: str, values: list[Any], parent: Param, source: str) -> None:
    """A condition on a choice lists only values that choice takes (a misspelt family would never match)."""
    if parent.kind != "choice":
        return
    for value in values:
        if value not in parent.values:
            raise _fail(
                f"'when' lists {value!r} for {name}, which takes only {parent.values}",
                key,
                source,
                suggest(str(value), map(str, parent.values)),
            )


def families_of(param: Param, space: dict[str, Param], families: list[str]) -> list[str]:
    """The families whose trials can draw `param`: those its `when: {family: [...]}` lists (all without one),
    narrowed by the parameters its condition names (a key conditioned on a VAE-only choice is VAE-only too)."""
    allowed = [f for f in families if f in param.when.get("family", families)]
    for name in param.when:
        if name != "family":
            allowed = [f for f in allowed if f in families_of(space[name], space, families)]
    return allowed


def parse_param(key: str, raw: Any, source: str, earlier: dict[str, Param]) -> Param:
    """Parse one space entry; `earlier` are the parameters above it (the only ones 'when' may name)."""
    if not isinstance(raw, dict):
        raise _fail(
            f"expected a mapping like {{choice: [...]}}, got {raw!r}",
            key,
            source,
            "see the shipped studies: genbench copy-study NAME",
        )
    for option in raw:
        if option not in OPTIONS:
            raise _fail(f"unknown option {option!r}", key, source, suggest(str(option), OPTIONS))
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(
            "needs exactly one of choice, float, int", key, source, "write {float: [1.0e-5, 1.0e-2], log: true}"
        )
    kind, log = kinds[0], raw.get("log", False)
    if not isinstance(log, bool):
        raise _fail("log must be true or false", key, source, "write log: true")
    when = _when(key, raw["when"], source, earlier) if "when" in raw else {}
    if kind == "choice":
        values = raw["choice"]
        if not isinstance(values, list) or not values or len(set(map(repr, values))) != len(values):
            raise _fail("choice needs a non-empty list of distinct values", key, source, "write {choice: [a, b]}")
        return Param("choice", values=values, when=when)
    low, high = _range(kind, key, raw[kind], log, source)
    step = raw.get("step")
    if step is not None and (not finite_number(step) or step <= 0 or log):  # `step <= 0` alone lets NaN through
        raise _fail("step must be a finite positive number and cannot go with log", key, source, "drop step or log")
    return Param(kind, low=low, high=high, log=log, step=step, when=when)
