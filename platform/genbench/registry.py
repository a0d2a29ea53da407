"""Small name -> object registry; get() lists the valid names in its error; plug-ins join it through entry points."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from genbench.errors import ConfigError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (GAN losses, datasets, families...), each with a one-line description.

    A registry may declare its names up front with the module that registers each (`modules`): then a name is
    checked without importing that module, and get() imports it on first use. This keeps config checks and
    `genbench validate` free of torch, which every entry's module imports.

    A registry with an entry-point `group` also holds what installed packages declare there (docs/plugins.md):
    each entry point names a light spec (no torch), which `adopt(name, spec)` checks and turns into an entry. They
    are looked up once, and only when a name is not built in or every name is listed, so that a built-in name is
    checked without reading any package's metadata.
    """

    def __init__(
        self,
        kind: str,
        modules: dict[str, str] | None = None,
        group: str = "",
        adopt: Callable[[str, Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self.modules = dict(modules or {})  # name -> module that registers it (declared, not yet imported)
        self.group, self.adopt = group, adopt
        self.broken: dict[str, str] = {}  # plug-in name -> why it could not be loaded (said when it is used)
        self._looked = not group  # whether the entry points were read
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        if self.modules and name not in self.modules:  # a declared registry lists every name it will hold
            raise ValueError(f"{self.kind} '{name}' is not declared in its registry's modules")

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = obj
            self._docs[name] = doc or (getattr(obj, "__doc__", "") or "").strip().splitlines()[0]
            return obj

        return add

    def check(self, name: object, key: str = "") -> str:
        """`name` if it is a valid name (nothing is imported); else the ConfigError that lists the valid ones."""
        if name not in self:  # also a list or a mapping where a name belongs (a YAML typo)
            if name in self.broken:
                raise ConfigError(self.broken[str(name)], key=key, fix="fix or uninstall the plug-in's package")
            raise ConfigError(f"unknown {self.kind} '{name}'", key=key, fix=suggest(str(name), self.names()))
        return name  # type: ignore[return-value]

    def get(self, name: str, key: str = "") -> T:
        self.check(name, key)
        if name not in self._entries:
            importlib.import_module(self.modules[name])
        return self._entries[name]

    def describe(self) -> dict[str, str]:
        """Every entry's one-line description (imports every declared module)."""
        for name in self.names():
            self.get(name)
        return {name: self._docs[name] for name in self.names()}

    def names(self) -> list[str]:
        self._look()
        return list(self.modules) + [n for n in self._entries if n not in self.modules]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._entries or name in self.modules:
            return True
        self._look()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _look(self) -> None:
        """Adopt every plug-in of the entry-point group (once). One that cannot load, or whose name is taken, is
        a warning now; a broken one's reason is also the error where its name is used."""
        if self._looked:
            return
        self._looked = True
        from genbench.plugins import entry_points_of, load_spec, origin

        for point in entry_points_of(self.group):
            try:
                if point.name in self._entries or point.name in self.modules:
                    raise ConfigError(f"{self.kind} '{point.name}' exists already", fix="rename the plug-in's entry")
                spec = load_spec(point, self.kind)
                entry = self.adopt(point.name, spec) if self.adopt else spec
            except ConfigError as exc:
                self._refuse(
                    point.name, f"{self.kind} plug-in '{point.name}' ({point.value} of {origin(point)}): {exc}"
                )
                continue
            self._entries[point.name] = entry
            doc = (getattr(spec, "doc", "") or f"a {self.kind}").strip().splitlines()[0]
            self._docs[point.name] = f"{doc} [plug-in of {origin(point)}]"

    def _refuse(self, name: str, why: str) -> None:
        warnings.warn(f"{why}; it is left out", stacklevel=3)
        if name not in self._entries and name not in self.modules:
            self.broken[name] = why
