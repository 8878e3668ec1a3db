"""Number built-ins: decimal, floor, ceiling, round *, abs, modulo, sqrt, log, exp, odd, even."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from typing import Any

from engine.feel import temporal
from engine.feel.builtins.registry import (
    InvalidArgument,
    builtin,
    integer,
    number,
    string,
    whole_number,
)
from engine.feel.values import DECIMAL_CONTEXT

_ROUNDING_MODES = {
    "UP": decimal.ROUND_UP,
    "DOWN": decimal.ROUND_DOWN,
    "CEILING": decimal.ROUND_CEILING,
    "FLOOR": decimal.ROUND_FLOOR,
    "HALF_UP": decimal.ROUND_HALF_UP,
    "HALF_DOWN": decimal.ROUND_HALF_DOWN,
    "HALF_EVEN": decimal.ROUND_HALF_EVEN,
    "UNNECESSARY": "UNNECESSARY",
}


def _round(value: Any, scale: Any, rounding: str) -> Decimal:
    value = number(value)
    digits = integer(scale)
    if not -6111 <= digits <= 6176:
        raise InvalidArgument("scale out of range")
    if rounding == "UNNECESSARY":
        # Java RoundingMode.UNNECESSARY: fine when no rounding is needed, else an error
        result = value.quantize(Decimal(1).scaleb(-digits), rounding=decimal.ROUND_DOWN, context=_WIDE)
        if result != value:
            raise InvalidArgument("rounding necessary")
        return result
    return value.quantize(Decimal(1).scaleb(-digits), rounding=rounding, context=_WIDE)


_WIDE = decimal.Context(prec=100_000, Emin=-999999, Emax=999999)


@builtin("decimal", "n, scale")
def decimal_(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_HALF_EVEN)


@builtin("decimal", "n, scale, mode")
def decimal_with_mode(value: Any, scale: Any, mode: Any) -> Decimal:
    rounding = _ROUNDING_MODES.get(string(mode).upper())
    if rounding is None:
        raise InvalidArgument(f"unknown rounding mode '{mode}'")
    return _round(value, scale, rounding)


@builtin("floor", "n")
def floor(value: Any) -> Decimal:
    return _round(value, Decimal(0), decimal.ROUND_FLOOR)


@builtin("floor", "n, scale")
def floor_scale(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_FLOOR)


@builtin("ceiling", "n")
def ceiling(value: Any) -> Decimal:
    return _round(value, Decimal(0), decimal.ROUND_CEILING)


@builtin("ceiling", "n, scale")
def ceiling_scale(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_CEILING)


@builtin("round up", "n, scale")
def round_up(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_UP)


@builtin("round down", "n, scale")
def round_down(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_DOWN)


@builtin("round half up", "n, scale")
def round_half_up(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_HALF_UP)


@builtin("round half down", "n, scale")
def round_half_down(value: Any, scale: Any) -> Decimal:
    return _round(value, scale, decimal.ROUND_HALF_DOWN)


def _abs(value: Any) -> Any:
    if type(value) is Decimal:
        return DECIMAL_CONTEXT.abs(value)
    if isinstance(value, temporal.YearMonthDuration):
        return temporal.YearMonthDuration(abs(value.months))
    if type(value) is dt.timedelta:
        return abs(value)
    raise InvalidArgument(f"abs() of {value!r}")


# feel-scala names the parameter `n`; it also accepts `number` (MANIFEST.md point 6).
builtin("abs", "n")(_abs)
builtin("abs", "number")(_abs)


@builtin("modulo", "dividend, divisor")
def modulo(dividend: Any, divisor: Any) -> Decimal:
    dividend, divisor = number(dividend), number(divisor)
    if not divisor:
        raise InvalidArgument("modulo by zero")
    # floored modulo: the result has the sign of the divisor (modulo(12, -5) = -3)
    quotient = DECIMAL_CONTEXT.divide(dividend, divisor).to_integral_value(rounding=decimal.ROUND_FLOOR)
    return DECIMAL_CONTEXT.subtract(dividend, DECIMAL_CONTEXT.multiply(divisor, quotient))


@builtin("sqrt", "number")
def sqrt(value: Any) -> Decimal:
    value = number(value)
    if value < 0:
        raise InvalidArgument("sqrt of a negative number")
    return DECIMAL_CONTEXT.sqrt(value)


@builtin("log", "number")
def log(value: Any) -> Decimal:
    value = number(value)
    if value <= 0:
        raise InvalidArgument("log of a non-positive number")
    return DECIMAL_CONTEXT.ln(value)


@builtin("exp", "number")
def exp(value: Any) -> Decimal:
    return DECIMAL_CONTEXT.exp(number(value))


@builtin("odd", "number")
def odd(value: Any) -> bool:
    return whole_number(value) % 2 != 0


@builtin("even", "number")
def even(value: Any) -> bool:
    return whole_number(value) % 2 == 0


@builtin("random number")
def random_number() -> Decimal:
    import random

    return Decimal(repr(random.random()))
