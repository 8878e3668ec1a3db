"""The FEEL value model and the operations every part of the interpreter shares.

FEEL value     Python representation
null           None
boolean        bool
number         decimal.Decimal, 34 significant digits (feel-scala BigDecimal DECIMAL128)
string         str (code points)
list           list
context        dict (insertion ordered, like feel-scala)
range          FeelRange
function       FeelFunction
temporal       see engine.feel.temporal

Input variables (JSON-compatible Python values) go through `from_python`; results leave
through `to_json_value`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine.feel import temporal
from engine.feel.temporal import YearMonthDuration

# feel-scala computes with java.math.MathContext.DECIMAL128: 34 digits, half-even.
DECIMAL_CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-6143,
    Emax=6144,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Marker for an absent variable or context entry (feel-scala NO_VARIABLE_FOUND)."""


class FeelRange:
    __slots__ = ("end", "end_included", "start", "start_included")

    def __init__(self, start: Any, end: Any, start_included: bool, end_included: bool) -> None:
        self.start, self.end = start, end
        self.start_included, self.end_included = start_included, end_included

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FeelRange)
            and values_equal(self.start, other.start) is True
            and values_equal(self.end, other.end) is True
            and self.start_included == other.start_included
            and self.end_included == other.end_included
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return to_feel_string(self)


class FeelFunction:
    """A function value: a user-defined `function(a, b) ...` or a built-in passed around."""

    __slots__ = ("invoke", "name", "parameters")

    def __init__(self, name: str, parameters: list[str], invoke: Callable[[list[Any]], Any]) -> None:
        self.name, self.parameters, self.invoke = name, parameters, invoke

    def __repr__(self) -> str:
        return f"function({', '.join(self.parameters)})"


_KINDS: dict[type, str] = {
    Decimal: "number",
    str: "string",
    bool: "boolean",
    list: "list",
    dict: "context",
    dt.date: "date",
    dt.datetime: "date and time",
    dt.time: "time",
    temporal.NanoDateTime: "date and time",
    temporal.NanoTime: "time",
    dt.timedelta: "days and time duration",
    YearMonthDuration: "years and months duration",
    FeelRange: "range",
    FeelFunction: "function",
    type(None): "null",
}


def kind_of(value: Any) -> str:
    """The FEEL type name of a value (`number`, `date and time`, ...)."""
    kind = _KINDS.get(type(value))
    if kind is None:
        for python_type, name in _KINDS.items():
            if isinstance(value, python_type):
                return name
        return "unknown"
    return kind


def from_python(value: Any) -> Any:
    """JSON-compatible Python value -> FEEL value (int/float become Decimal)."""
    value_type = type(value)
    if value is None or value_type is str or value_type is bool or value_type is Decimal:
        return value
    if value_type is int:
        return Decimal(value)
    if value_type is float:
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(key): from_python(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_python(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(int(value))
    if isinstance(value, float):
        return from_python(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (*temporal.TEMPORAL_TYPES, FeelRange, FeelFunction)):
        return value
    return None


_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def to_json_value(value: Any, *, keep_decimal: bool = False) -> Any:
    """FEEL value -> JSON-compatible Python value, as Zeebe writes variables.

    Numbers: int when integral and within a long, else float (Zeebe stores long/double;
    a number beyond double range becomes None); `keep_decimal` keeps Decimal. Temporal values become ISO strings; ranges and functions, which Zeebe
    cannot store, become None.
    """
    value_type = type(value)
    if value is None or value_type is str or value_type is bool:
        return value
    if value_type is Decimal:
        if keep_decimal:
            return value
        # Zeebe writes a whole number that fits a long as a long, anything else as a double
        if _LONG_MIN <= value <= _LONG_MAX and value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if math.isfinite(as_float) else None
    if value_type is list:
        return [to_json_value(item, keep_decimal=keep_decimal) for item in value]
    if value_type is dict:
        return {key: to_json_value(item, keep_decimal=keep_decimal) for key, item in value.items()}
    if isinstance(value, temporal.TEMPORAL_TYPES):
        return temporal.format_temporal(value, zone_style="bracket")
    return None


# equality and ordering ----------------------------------------------------------------------


def values_equal(left: Any, right: Any) -> bool | None:
    """FEEL `=`: null equals only null; values of different types are not comparable (None)."""
    if left is None:
        return right is None
    if right is None:
        return False
    left_kind, right_kind = kind_of(left), kind_of(right)
    if left_kind != right_kind:
        return None
    if left_kind == "list":
        if len(left) != len(right):
            return False
        return all(values_equal(a, b) is True for a, b in zip(left, right, strict=True))
    if left_kind == "context":
        if left.keys() != right.keys():
            return False
        return all(values_equal(left[key], right[key]) is True for key in left)
    if left_kind in ("date and time", "time") and (left.tzinfo is None) != (right.tzinfo is None):
        return False
    try:
        return bool(left == right)
    except TypeError:
        return None


_ORDERED_KINDS = frozenset(
    {
        "number",
        "string",
        "date",
        "time",
        "date and time",
        "days and time duration",
        "years and months duration",
    }
)


def compare_values(left: Any, right: Any) -> int | None:
    """-1/0/1, or None when the values cannot be ordered (null, mixed types, ...)."""
    if left is None or right is None:
        return None
    left_kind = kind_of(left)
    if left_kind != kind_of(right) or left_kind not in _ORDERED_KINDS:
        return None
    try:
        if left_kind == "time" and (left.tzinfo is None) != (right.tzinfo is None):
            return None
        if left < right:
            return -1
        if left > right:
            return 1
        return 0
    except TypeError:
        return None


def in_range(value: Any, feel_range: FeelRange) -> bool | None:
    """`value in [start..end]`; a null bound or an incomparable value gives null."""
    lower = compare_values(value, feel_range.start)
    upper = compare_values(value, feel_range.end)
    if lower is None or upper is None:
        return None
    return (lower > 0 or (lower == 0 and feel_range.start_included)) and (
        upper < 0 or (upper == 0 and feel_range.end_included)
    )


# string conversion --------------------------------------------------------------------------


def format_number(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value.normalize(DECIMAL_CONTEXT), "f")
    return text


def to_feel_string(value: Any) -> str:
    """feel-scala's `string()` / `toString` rendering of any value."""
    if value is None:
        return "null"
    value_type = type(value)
    if value_type is str:
        return value
    if value_type is bool:
        return "true" if value else "false"
    if value_type is Decimal:
        return format_number(value)
    if value_type is list:
        return "[" + ", ".join(_nested_string(item) for item in value) + "]"
    if value_type is dict:
        return "{" + ", ".join(f"{key}:{_nested_string(item)}" for key, item in value.items()) + "}"
    if isinstance(value, temporal.TEMPORAL_TYPES):
        return temporal.format_temporal(value)
    if isinstance(value, FeelRange):
        opening = "[" if value.start_included else "("
        closing = "]" if value.end_included else ")"
        return f"{opening}{_nested_string(value.start)}..{_nested_string(value.end)}{closing}"
    if isinstance(value, FeelFunction):
        return repr(value)
    return str(value)


def _nested_string(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return to_feel_string(value)


def to_json_text(value: Any) -> str:
    """`to json()`: compact JSON, temporal values as ISO strings."""

    def convert(item: Any) -> Any:
        if isinstance(item, Decimal):
            return _JsonNumber(item)
        if isinstance(item, list):
            return [convert(element) for element in item]
        if isinstance(item, dict):
            return {key: convert(element) for key, element in item.items()}
        if isinstance(item, temporal.TEMPORAL_TYPES):
            return temporal.format_temporal(item, zone_style="bracket")
        if isinstance(item, (FeelRange, FeelFunction)):
            return to_feel_string(item)
        return item

    return _dump_json(convert(value))


class _JsonNumber:
    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value


def _dump_json(value: Any) -> str:
    if isinstance(value, _JsonNumber):
        return format_number(value.value)
    if isinstance(value, list):
        return "[" + ",".join(_dump_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(key, ensure_ascii=False)}:{_dump_json(item)}" for key, item in value.items()
            )
            + "}"
        )
    return json.dumps(value, ensure_ascii=False)
