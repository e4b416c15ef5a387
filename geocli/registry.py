"""One small registry: branches, fusions, heads, datasets, OCR engines and segmenters register by name."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from geocli.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. ``@REG.register("name")`` beside the class; ``REG.get(name)`` to build."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise UsageError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
