"""Small name -> object registry; get() lists the valid names in its error."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genbench.errors import ConfigError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (GAN losses, datasets, families...), each with a one-line description."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = obj
            self._docs[name] = doc or (getattr(obj, "__doc__", "") or "").strip().splitlines()[0]
            return obj

        return add

    def get(self, name: str, key: str = "") -> T:
        if name not in self:  # also a list or a mapping where a name belongs (a YAML typo)
            raise ConfigError(f"unknown {self.kind} '{name}'", key=key, fix=suggest(str(name), self._entries))
        return self._entries[name]

    def describe(self) -> dict[str, str]:
        return dict(self._docs)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
