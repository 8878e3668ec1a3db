"""Conversion built-ins: string(), number(), to json(), from json()."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.feel.builtins.registry import InvalidArgument, builtin, string
from engine.feel.values import from_python, to_feel_string, to_json_text


@builtin("string", "from")
def string_(value: Any) -> str | None:
    if value is None:
        return None
    return to_feel_string(value)


_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_GROUPING = {" ", ",", "."}
_DECIMAL = {",", "."}


def _number(text: Any, grouping: Any = None, decimal_separator: Any = None) -> Decimal:
    value = string(text)
    if grouping is not None and string(grouping) not in _GROUPING:
        raise InvalidArgument("grouping separator must be space, comma or period")
    if decimal_separator is not None and string(decimal_separator) not in _DECIMAL:
        raise InvalidArgument("decimal separator must be comma or period")
    if grouping is not None and grouping == decimal_separator:
        raise InvalidArgument("grouping and decimal separator are the same")
    if grouping is not None:
        value = value.replace(grouping, "")
    if decimal_separator is not None and decimal_separator != ".":
        if "." in value:
            raise InvalidArgument("unexpected '.'")
        value = value.replace(decimal_separator, ".")
    if not _NUMBER_TEXT.fullmatch(value):
        raise InvalidArgument(f"'{text}' is not a number")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InvalidArgument(f"'{text}' is not a number") from None


builtin("number", "from")(_number)
builtin("number", "from, grouping separator")(_number)
builtin("number", "from, grouping separator, decimal separator")(_number)


@builtin("to json", "value")
def to_json(value: Any) -> str:
    return to_json_text(value)


@builtin("from json", "value")
def from_json(value: Any) -> Any:
    try:
        parsed = json.loads(string(value), parse_float=Decimal, parse_int=Decimal)
    except (json.JSONDecodeError, ValueError) as error:
        raise InvalidArgument(f"not JSON: {error}") from None
    return from_python(parsed)
