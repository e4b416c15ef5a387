"""One small registry: branches, fusions, heads, datasets, OCR engines and segmenters register by name."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterator, TypeVar

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

    def option_names(self, name: str) -> list[str]:
        """The keyword parameters of ``name``'s factory (a class: its constructor's)."""
        params = inspect.signature(self.get(name)).parameters.values()
        return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def takes(self, name: str, option: str) -> bool:
        return option in self.option_names(name)

    def build(self, name: str, *args: Any, internal: dict | None = None, **options: Any):
        """``get(name)(*args, **options)``, every option checked first: an unknown one is a
        ``UsageError`` listing the valid ones. ``internal`` options (set by geocli, not by users)
        are passed where the factory takes them and are not offered to users."""
        internal = internal or {}
        params = self.option_names(name)[len(args):]
        valid = [p for p in params if p not in internal]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UsageError(f"unknown option(s) {unknown} for {self.kind} {name!r}; valid: {', '.join(valid)}")
        extra = {k: v for k, v in internal.items() if k in params}
        return self.get(name)(*args, **options, **extra)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
