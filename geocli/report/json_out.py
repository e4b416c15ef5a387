"""Strict JSON, both ways: geocli never writes ``NaN`` / ``Infinity`` (not JSON; most parsers
reject them) and never accepts them, or a number too large for a float, in a file it reads.

Where a non-finite number legitimately arises in a result (the loss of a diverged epoch, a mean
over nothing), it is written as ``null``: "no value", which every JSON reader understands.
"""
from __future__ import annotations

import json
import math
from typing import Any

def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None; tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy scalars
        return finite_or_none(value.item())
    return value


def strict_json(value: Any, **kwargs) -> str:
    """``json.dumps`` that writes non-finite numbers as null and can never emit NaN/Infinity."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)


class StrictJSONError(ValueError):
    """A JSON text geocli refuses: NaN/Infinity, an overflowing number, or absurd nesting."""


def _no_constant(name: str):
    raise StrictJSONError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"{text[:20]} is too large for a number")
    return value


def loads_strict(text: str) -> Any:
    """Parse JSON that holds only finite numbers (nesting past the recursion limit is refused too)."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
