"""Every run key as documentation (key, type, default, meaning), read from the typed config dataclasses; no torch."""

from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
from dataclasses import dataclass, field
from typing import Any

from genbench.config import DataConfig, EvalConfig, Switch, TrainConfig, field_types, from_flat, to_flat
from genbench.data import DATA_KEYS

SHARED = (("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig))
SEED_MEANING = "seed of weights, noise and batch order; a study's seeds count up from it"
# Meanings the source comments do not give: keys whose comment is a measurement note, or has none
MEANINGS = {
    "eval.every": "steps between evaluations of the quality scores during training; a study's budget sets it",
    "eval.n_samples": "generated samples per evaluation (2,500 is the toy-GAN mode protocol's)",
}
OPTIM_MEANINGS = {
    "lr_g": "the generator's Adam learning rate",
    "lr_d": "the discriminator's Adam learning rate",
    "beta1_g": "the generator's Adam beta1",
    "beta2_g": "the generator's Adam beta2",
    "beta1_d": "the discriminator's Adam beta1",
    "beta2_d": "the discriminator's Adam beta2",
}
TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool", Switch: "auto|true|false"}


@dataclass(frozen=True)
class KeyDoc:
    """One run key: its type, its default (per family where families differ) and what it means."""

    key: str
    kind: str
    default: str  # as shown: one value, or 'gan 2000, vae 15000, ...' where the families' defaults differ
    meaning: str
    defaults: dict[str, Any] = field(default_factory=dict)  # family -> its default, typed (for --json)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's meaning from its source: the comment on its own line, else the comment lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source shipped: the keys are still listed, without meanings
        return {}
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(token.start[0])
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        name = line[4:].partition(":")[0].strip() if line.startswith("    ") and not line.startswith("     ") else ""
        if name in names and name not in docs:
            docs[name] = comments.get(number) or _block_above(comments, code_lines, number)
    return docs


def section_docs(cls: type) -> dict[str, str]:
    """Each field's meaning from the class that declares it first: a family's optimiser section subclasses the
    shared one to change defaults, and its keys keep the shared meaning (its own comments say why a default)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            docs.update({name: text for name, text in field_docs(base).items() if text and name not in docs})
    return docs


def _block_above(comments: dict[int, str], code_lines: set[int], number: int) -> str:
    """The comment-only lines directly above line `number`, joined."""
    block: list[str] = []
    line = number - 1
    while line in comments and line not in code_lines:
        block.insert(0, comments[line])
        line -= 1
    return " ".join(block)


def _type_name(kind: Any) -> str:
    return TYPE_NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value == "" else f"{value:g}" if isinstance(value, float) else str(value)


def _data_meaning(name: str, meaning: str) -> str:
    """A data.* key's meaning and the data sets that read it (the others ignore it)."""
    if name == "name":
        return meaning
    users = [d for d, keys in DATA_KEYS.items() if name in keys]
    return f"{meaning} [read by: {', '.join(users) or 'none'}]"


def shared_keys(families: list[str]) -> list[KeyDoc]:
    """family, seed and the data.*, train.*, eval.* keys every family has; defaults that differ are given per
    family (each family has its own default budget)."""
    from genbench.families import FAMILIES

    resolved = {f: to_flat(from_flat({"family": f})) for f in families}
    out = [
        KeyDoc(
            "family",
            "str",
            families[0] if len(families) == 1 else "gan",
            "the model family: " + " | ".join(FAMILIES.names()),
            {f: f for f in families},
        ),
        KeyDoc("seed", "int", "0", SEED_MEANING, {f: r["seed"] for f, r in resolved.items()}),
    ]
    for prefix, cls in SHARED:
        docs = field_docs(cls)
        for name, kind in field_types(cls).items():
            key = f"{prefix}.{name}"
            meaning = MEANINGS.get(key) or docs.get(name, "")
            meaning = _data_meaning(name, meaning) if prefix == "data" else meaning
            values = {f: r[key] for f, r in resolved.items()}
            out.append(KeyDoc(key, _type_name(kind), _per_family(values), meaning, values))
    return out


def _per_family(values: dict[str, Any]) -> str:
    """One default, or 'gan 2000, vae 15000, ...' where the families' defaults differ."""
    shown = {f: _shown(v) for f, v in values.items()}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{f} {v}" for f, v in shown.items())


def family_keys(family: str) -> list[KeyDoc]:
    """The keys of one family's own sections: '<family>.*' (its model) and 'optim.*' (its optimiser)."""
    from genbench.families import FAMILIES

    spec = FAMILIES.get(family)
    resolved = to_flat(from_flat({"family": family}))
    out = []
    for prefix, cls in ((family, spec.model_config), ("optim", spec.optim_config)):
        docs = section_docs(cls)
        for name, kind in field_types(cls).items():
            key = f"{prefix}.{name}"
            meaning = docs.get(name) or (OPTIM_MEANINGS.get(name, "") if prefix == "optim" else "")
            out.append(KeyDoc(key, _type_name(kind), _shown(resolved[key]), meaning, {family: resolved[key]}))
    return out


def describe_keys(family: str | None = None) -> dict[str, list[KeyDoc]]:
    """Section title -> keys: the shared keys, then each family's own (only `family`'s when one is given)."""
    from genbench.families import FAMILIES

    families = [FAMILIES.check(family, key="FAMILY")] if family else FAMILIES.names()
    title = f"shared by every family (defaults of {family})" if family else "shared by every family"
    out = {title: shared_keys(families)}
    for name in families:
        out[f"family {name}: {name}.* and its optim.*"] = family_keys(name)
    return out


def keys_document(sections: dict[str, list[KeyDoc]], family: str | None = None) -> dict[str, Any]:
    """`genbench list keys --json`: the sections of describe_keys, each key with its typed default per family."""
    return {
        "family": family,
        "sections": [
            {
                "title": title,
                "keys": [
                    {"key": k.key, "type": k.kind, "default": k.default, "defaults": k.defaults, "meaning": k.meaning}
                    for k in keys
                ],
            }
            for title, keys in sections.items()
        ],
    }


def format_keys(sections: dict[str, list[KeyDoc]], markdown: bool = False) -> str:
    """The listing as aligned text (one line a key), or as Markdown tables."""
    lines: list[str] = []
    for title, keys in sections.items():
        lines += (_markdown if markdown else _text)(title, keys) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _text(title: str, keys: list[KeyDoc]) -> list[str]:
    width, kinds = max(len(k.key) for k in keys), max(len(k.kind) for k in keys)
    return [f"# {title}"] + [
        f"{k.key:<{width}}  {k.kind:<{kinds}}  {k.default:<10}  {k.meaning}".rstrip() for k in keys
    ]


def _markdown(title: str, keys: list[KeyDoc]) -> list[str]:
    escaped = [k.meaning.replace("|", "\\|") for k in keys]  # a bare | would end the table cell
    return [f"### {title[0].upper()}{title[1:]}", "", "| key | type | default | meaning |", "|---|---|---|---|"] + [
        f"| `{k.key}` | {k.kind} | `{k.default}` | {meaning} |" for k, meaning in zip(keys, escaped)
    ]
