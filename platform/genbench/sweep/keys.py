"""Keys of one family in a study of several: per-family `fixed:` sections, `when: {family: [...]}` guards, and the
errors that say whose key it is and how to guard it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from genbench.config import RENAMED, check_renamed, key_fix, valid_keys
from genbench.errors import ConfigError
from genbench.yamlfile import YamlDoc

# One data set and one way of scoring for the whole study, so that its families compare; its budget, seeds and
# resources set these for every trial
SHARED_ONLY = ("data.", "eval.")
SET_BY_STUDY = {
    "family": "family:",
    "seed": "budget.seeds",
    "train.steps": "budget.steps",
    "train.device_s": "budget.device_s",
    "train.flops": "budget.train_flops",
    "eval.count": "budget.evals",
    "train.threads": "resources.cpus_per_trial",
}


@cache
def family_keys(family: str) -> frozenset[str]:
    """Every flat run key of one family (cached: each call builds a default run)."""
    return frozenset(valid_keys(family))


def _names(families: list[str]) -> str:
    return ", ".join(families[:-1]) + " and " + families[-1] if len(families) > 1 else families[0]


def check_key(
    key: Any, takers: list[str], families: list[str], source: str, guard: Callable[[list[str]], str], value: Any = None
) -> None:
    """`key` must be a run key of every family in `takers` (the study's `families` whose trials get it); else one
    error: a renamed key with its new name and `value` as written there, an unknown key with the valid ones, or
    the families that have it and how to guard it (`guard(owners)`)."""
    missing = [f for f in takers if key not in family_keys(f)]
    if not missing:
        return
    if key in RENAMED and any(RENAMED[key] in family_keys(f) for f in takers):
        check_renamed(key, value, source)
    owners = [f for f in families if key in family_keys(f)]
    study = "+".join(families)
    if not owners:
        valid = set().union(*(family_keys(f) for f in families))
        raise ConfigError(
            f"unknown key for family '{study}'", key=str(key), source=source, fix=key_fix(str(key), valid, families)
        )
    raise ConfigError(
        f"a key of {_names(owners)} only; the {_names(missing)} trials of this {study} study cannot take it",
        key=str(key),
        source=source,
        fix=guard(owners),
    )


def per_family_fix(key: str, where: str = "") -> Callable[[list[str]], str]:
    """The fix for a fixed key some of the study's families lack: a section of the family that has it."""
    return lambda owners: (
        f"fix it for the {owners[0]} trials only{where}: fixed: {{{owners[0]}: {{{key}: VALUE}}}}"
        + (f" (likewise for {_names(owners[1:])})" if len(owners) > 1 else "")
    )


def guard_fix(owners: list[str]) -> str:
    """The fix for a searched key some of its trials' families lack: a family guard."""
    return f"search it for those trials only: add when: {{family: [{', '.join(owners)}]}} to this entry"


def family_sections(doc: YamlDoc, fixed: dict[str, Any], families: list[str]) -> dict[str, dict[str, Any]]:
    """The `fixed:` entries named after a family (`fixed: {vae: {vae.latent_dim: 16}}`): run keys fixed for that
    family's trials only, each checked against it; the other entries are shared by every family."""
    from genbench.families import FAMILIES

    sections: dict[str, dict[str, Any]] = {}
    for name, section in fixed.items():
        if not (isinstance(name, str) and name in FAMILIES):
            continue
        where = doc.where(f"fixed.{name}", "fixed")
        if name not in families:
            raise ConfigError(
                f"{name} is not a family of this study",
                key=f"fixed.{name}",
                source=where,
                fix=f"its families are {_names(families)}: add {name} to family: or drop this section",
            )
        if not isinstance(section, dict):
            raise ConfigError(
                f"expected a mapping of {name}'s run keys, got {section!r}",
                key=f"fixed.{name}",
                source=where,
                fix=f"write fixed: {{{name}: {{{name}.KEY: VALUE}}}}",
            )
        for key, value in section.items():
            _check_section_key(doc, name, key, value, families)
        sections[name] = dict(section)
    return sections


def _check_section_key(doc: YamlDoc, family: str, key: Any, value: Any, families: list[str]) -> None:
    where = doc.where(f"fixed.{family}.{key}", f"fixed.{family}")
    if isinstance(key, str) and (key.startswith(SHARED_ONLY) or key in SET_BY_STUDY):
        what = SET_BY_STUDY.get(key) or ("data:" if key.startswith("data.") else "fixed: (outside a family section)")
        raise ConfigError(
            "is the same for every family of a study",
            key=f"fixed.{family}.{key}",
            source=where,
            fix=f"set it in the study's {what}",
        )
    check_key(key, [family], families, where, per_family_fix(str(key)), value)
