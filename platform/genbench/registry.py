"""Small name -> object registry; get() lists the valid names in its error."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genbench.errors import ConfigError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (GAN losses, datasets, families...), each with a one-line description.

    A registry may declare its names up front with the module that registers each (`modules`): then a name is
    checked without importing that module, and get() imports it on first use. This keeps config checks and
    `genbench validate` free of torch, which every entry's module imports.
    """

    def __init__(self, kind: str, modules: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.modules = dict(modules or {})  # name -> module that registers it (declared, not yet imported)
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
        return list(self.modules) + [n for n in self._entries if n not in self.modules]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self.modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
