"""Safe YAML loading that remembers the line of every key, so errors can say file:line."""
from __future__ import annotations

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


def _walk(node: yaml.Node, loader: yaml.SafeLoader, prefix: str, lines: dict[str, int]) -> Any:
    if isinstance(node, yaml.CollectionNode) and node.tag not in PLAIN_TAGS:  # e.g. !!python/object/apply: [...]
        raise yaml.constructor.ConstructorError(None, None, f"the tag {node.tag!r} is not allowed",
                                                node.start_mark)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            path = f"{prefix}.{key}" if prefix else str(key)
            lines[path] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, loader, path, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loader, f"{prefix}[{i}]", lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml(path: str | Path) -> YamlDoc:
    """Load one YAML mapping safely; malformed YAML or a non-mapping is a ConfigError naming the line."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", source=path, fix="check the path") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        data = _walk(node, loader, "", lines) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML: {problem}", source=where, fix="fix the syntax at that line") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of keys at the top level", source=path, fix="see search_spaces/ for examples")
    return YamlDoc(path=path, data=data, lines=lines)
