"""Plug-ins: what a third-party package declares under genbench's entry-point groups, read without torch.

A package adds a data set, a family or a feature extractor by naming a light spec (a DatasetSpec, a FamilySpec or
an ExtractorSpec: names, keys, defaults, and the heavy code as a 'module:attribute' string) in its entry points;
genbench.registry.Registry adopts them. docs/plugins.md is the guide.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from genbench.errors import ConfigError

DATASETS_GROUP = "genbench.datasets"
FAMILIES_GROUP = "genbench.families"
EXTRACTORS_GROUP = "genbench.extractors"
S = TypeVar("S")


@dataclass(frozen=True)
class DatasetSpec:
    """A plug-in data set: its loader is imported only when a run loads the data (validation stays torch-free)."""

    name: str
    doc: str
    loader: str  # 'module:function' of the callable (DataConfig) -> genbench.data.Dataset
    keys: tuple[str, ...] = ("n_train", "n_test")  # the data.* keys (besides data.name) the loader reads


@dataclass(frozen=True)
class ExtractorSpec:
    """A plug-in feature extractor, chosen by `eval.features: NAME`; its builder is imported when a run scores."""

    name: str
    doc: str
    builder: str  # 'module:function' of the callable (genbench.data.Dataset) -> genbench.metrics.Extractor


def resolve(target: str) -> Any:
    """The object a 'module:attribute' string names (the module is imported now)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lazy(target: str) -> Any:
    """A function that calls what `target` ('module:function') names, importing its module on the first call."""

    def call(*args: Any) -> Any:
        return resolve(target)(*args)

    call.__doc__ = f"calls {target}"
    return call


def entry_points_of(group: str) -> list[EntryPoint]:
    """The entry points installed packages declare in `group`, one per name (the first package found wins)."""
    seen: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        seen.setdefault(point.name, point)
    return list(seen.values())


def origin(point: EntryPoint) -> str:
    """The package that declares an entry point: 'genbench-blobs 0.1.0'."""
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist is not None else f"the package of {point.value}"


def load_spec(point: EntryPoint, kind: str) -> Any:
    """The spec an entry point names; a failure to import it is a ConfigError saying what failed. Importing torch
    there is a warning: it would make every check of a study slow (the heavy code belongs in the loader's module)."""
    had_torch = "torch" in sys.modules
    try:
        spec = point.load()
    except Exception as exc:  # noqa: BLE001 (any error of a third party's import is reported, not raised as is)
        raise ConfigError(f"cannot import {point.value}: {type(exc).__name__}: {exc}") from None
    if not had_torch and "torch" in sys.modules:
        warnings.warn(
            f"{kind} plug-in '{point.name}' ({point.value} of {origin(point)}) imports torch with its spec: keep its "
            "module light and name the heavy code as 'module:attribute' (docs/plugins.md)",
            stacklevel=2,
        )
    return spec


def expect(spec: Any, cls: type[S], name: str) -> S:
    """`spec` if it is a `cls` named `name`; else the ConfigError that says what the entry point should name."""
    if not isinstance(spec, cls):
        raise ConfigError(f"names a {type(spec).__name__}, not a {cls.__module__}.{cls.__name__}")
    named = getattr(spec, "name", name)
    if named != name:
        raise ConfigError(f"its spec is named '{named}'", fix=f"name the entry point '{named}' or the spec '{name}'")
    return spec
