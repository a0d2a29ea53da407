"""Strict, safe YAML loading that remembers the line of every key, so errors can say file:line."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genbench.errors import ConfigError


@dataclass
class YamlDoc:
    """A loaded YAML mapping plus the 1-based line of each key path ('space.gan.loss' -> 12)."""

    path: str
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, *keys: str) -> str:
        """'file:line' for the deepest of the given key paths that has a line, else the file."""
        for key in keys:
            if key in self.lines:
                return f"{self.path}:{self.lines[key]}"
        return self.path


PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_VALUES = 100_000  # values one document may expand to: a real study has a few hundred; aliases of aliases of
# lists ("billion laughs") expand exponentially, and every value walked costs memory in `data` and `lines`


class _Refused(Exception):
    """What the walk refuses (a duplicate key, an alias inside itself): line, key path, problem, fix."""

    def __init__(self, line: int, key: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.line, self.key, self.problem, self.fix = line, key, problem, fix


@dataclass
class _Walk:
    """One document's walk over PyYAML's nodes, building plain dicts and lists and recording each key's line."""

    loader: yaml.SafeLoader
    lines: dict[str, int] = field(default_factory=dict)
    inside: set[int] = field(default_factory=set)  # collection nodes being walked: an alias to one is a cycle
    flattened: set[int] = field(default_factory=set)  # mappings checked and merged once (an alias walks them again)
    count: int = 0

    def value(self, node: yaml.Node, prefix: str) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _Refused(
                node.start_mark.line + 1,
                prefix,
                f"the document expands to more than {MAX_VALUES} values (aliases of aliases?)",
                "write the values out, or use fewer aliases",
            )
        if not isinstance(node, yaml.CollectionNode):
            return self.loader.construct_object(node, deep=True)
        if node.tag not in PLAIN_TAGS:  # e.g. !!python/object/apply: [...]
            raise yaml.constructor.ConstructorError(None, None, f"the tag {node.tag!r} is not allowed", node.start_mark)
        if id(node) in self.inside:  # a: &x [*x] is a structure without end; every reader would loop or crash
            raise _Refused(
                node.start_mark.line + 1,
                prefix,
                "an alias refers to the value that contains it (a recursive structure)",
                "an alias *name may only repeat a value defined outside it",
            )
        self.inside.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, prefix)
            return [self.value(item, f"{prefix}[{i}]") for i, item in enumerate(node.value)]
        finally:
            self.inside.discard(id(node))

    def mapping(self, node: yaml.MappingNode, prefix: str) -> dict[Any, Any]:
        if id(node) not in self.flattened:
            self.check_keys(node, prefix)
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor); explicit keys win
            self.flattened.add(id(node))
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            path = f"{prefix}.{key}" if prefix else str(key)
            self.lines[path] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, path)
        return out

    def check_keys(self, node: yaml.MappingNode, prefix: str) -> None:
        """Keys are plain values, each written once: YAML itself would keep only the last of a duplicate."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            line, key = key_node.start_mark.line + 1, self.loader.construct_object(key_node, deep=True)
            path = f"{prefix}.{key}" if prefix else str(key)
            if not isinstance(key, Hashable):
                raise _Refused(
                    line, prefix or "(top level)", f"a key must be a name or number, got {key!r}", "write key: value"
                )
            if key in seen:
                raise _Refused(
                    line,
                    path,
                    f"duplicate key: also on line {seen[key]}",
                    "keep one of them; YAML would silently keep only the last",
                )
            seen[key] = line


def parse_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """One YAML document (any value, None when empty) and the line of each key path; malformed or
    ambiguous YAML is a ConfigError naming `source`:line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        walk = _Walk(loader)
        return (walk.value(node, "") if node is not None else None), walk.lines
    except _Refused as exc:
        raise ConfigError(exc.problem, key=exc.key, source=f"{source}:{exc.line}", fix=exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML: {problem}", source=where, fix="fix the syntax at that line") from None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise ConfigError("malformed YAML: nested too deeply", source=source, fix="flatten the structure") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> YamlDoc:
    """Load one YAML mapping safely; malformed YAML, a duplicate key, a recursive alias or a non-mapping is a
    ConfigError naming the line."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", source=path, fix="check the path") from None
    except UnicodeDecodeError:
        raise ConfigError("cannot read file: not UTF-8 text", source=path, fix="save it as UTF-8") from None
    data, lines = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise ConfigError(
            "expected a mapping of keys at the top level",
            source=path,
            fix="see the shipped studies (genbench copy-study NAME)",
        )
    return YamlDoc(path=path, data=data, lines=lines)


def mapping_doc(data: Any, source: str) -> YamlDoc:
    """A mapping given in Python (a study as a dict) as the YamlDoc a file with that content loads to: a copy in
    plain YAML data (tuples as lists, numpy numbers as Python numbers), without lines. A value YAML cannot hold is
    a ConfigError naming `source` and its key path."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys at the top level, got {type(data).__name__}",
            source=source,
            fix="give a dict with a study file's keys",
        )
    return YamlDoc(path=source, data=_plain_data(data, "", source))


def _plain_data(value: Any, path: str, source: str) -> Any:
    """`value` as the plain data YAML loads to; refused with its key path where it is something else."""
    if isinstance(value, dict):
        return _plain_mapping(value, path, source)
    if isinstance(value, (list, tuple)):
        return [_plain_data(item, f"{path}[{i}]", source) for i, item in enumerate(value)]
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar (a value read from results): its Python value, which YAML can hold
    for kind in (bool, str, float, int):  # bool before int: True is an int too
        if isinstance(value, kind):
            return kind(value)  # a subclass (numpy.float64 is a float) as the plain type yaml.safe_dump writes
    if value is None:
        return None
    raise ConfigError(
        f"{type(value).__name__} {value!r} is not plain YAML data",
        key=path,
        source=source,
        fix="use str, int, float, bool, None, lists and dicts",
    )


def _plain_mapping(mapping: dict[Any, Any], path: str, source: str) -> dict[Any, Any]:
    out = {}
    for key, item in mapping.items():
        if not isinstance(key, (str, int, float, bool)):
            raise ConfigError(f"a key must be a name or number, got {key!r}", key=path or "(top level)", source=source)
        out[key] = _plain_data(item, f"{path}.{key}" if path else str(key), source)
    return out
