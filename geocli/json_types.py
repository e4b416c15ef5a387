"""JSON values checked against Python type hints: what ``ConfigBase.from_dict`` uses so that a
config file's ``"epochs": "ten"``, ``true`` for a number or a non-finite float is one line naming
the key, never a ``TypeError`` deep inside training."""
from __future__ import annotations

import math
import types
import typing
from typing import Any

from geocli.errors import UsageError


def json_type(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    names = {bool: "true/false", int: "a whole number", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _expected(tp) -> str:
    if tp is Any:
        return "any JSON value"
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    names = {bool: "true/false", int: "a whole number", float: "a finite number", str: "a string",
             list: "a list", dict: "an object"}
    return names.get(typing.get_origin(tp) or tp, getattr(tp, "__name__", str(tp)))


def convert(tp, value, where: str):
    """``value`` checked against type ``tp`` (nested configs, lists, dicts, optionals); a wrong
    type or a non-finite number is a one-line ``UsageError`` naming ``where``."""
    if tp is Any:
        return _finite_json(value, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(tp, args, value, where)
    if isinstance(tp, type) and hasattr(tp, "from_dict"):  # a nested config class
        return tp.from_dict(value, where)
    if (origin or tp) in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {json_type(value)}")
        return [convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else _finite_json(value, where)
    if (origin or tp) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise UsageError(f"{where}: expected an object, got {json_type(value)}")
        item = args[1] if args else Any
        return {k: convert(item, v, f"{where}.{k}") for k, v in value.items()}
    return _convert_scalar(tp, value, where)


def _convert_union(tp, args, value, where: str):
    if value is None:
        if type(None) in args:
            return None
        raise UsageError(f"{where}: expected {_expected(tp)}, got null")
    for option in (a for a in args if a is not type(None)):
        try:
            return convert(option, value, where)
        except UsageError:
            continue
    raise UsageError(f"{where}: expected {_expected(tp)}, got {json_type(value)}")


def _convert_scalar(tp, value, where: str):
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        str: isinstance(value, str),
    }.get(tp, True)
    if not ok:
        raise UsageError(f"{where}: expected {_expected(tp)}, got {json_type(value)}")
    return float(value) if tp is float else value


def _finite_json(value, where: str):
    """Free-form option values: any JSON, but numbers must be finite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: expected a finite number, got {value!r}")
    if isinstance(value, dict):
        return {k: _finite_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
