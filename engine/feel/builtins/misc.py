"""Boolean and miscellaneous built-ins: not, is defined (see compiler), get or else, assert,
is, range."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from engine.feel import ast
from engine.feel.builtins.registry import InvalidArgument, builtin, evaluate_constant, string
from engine.feel.errors import AssertionFailed
from engine.feel.values import FeelRange, kind_of, values_equal


@builtin("not", "negand")
def not_(value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidArgument(f"not() expects a boolean, got {value!r}")
    return not value


@builtin("is defined", "value")
def is_defined(value: Any) -> bool:
    # Only reached for named-argument calls; `is defined(x)` is compiled specially.
    return value is not None


@builtin("get or else", "value, default")
def get_or_else(value: Any, default: Any) -> Any:
    return default if value is None else value


@builtin("assert", "value, condition")
def assert_(value: Any, condition: Any) -> Any:
    if condition is not True:
        raise AssertionFailed(f"Assertion failure on evaluate the expression: condition is {condition!r}")
    return value


@builtin("assert", "value, condition, cause")
def assert_cause(value: Any, condition: Any, cause: Any) -> Any:
    if condition is not True:
        raise AssertionFailed(f"Assertion failure on evaluate the expression: {cause}")
    return value


@builtin("is", "value1?, value2?")
def is_(first: Any = None, second: Any = None) -> bool:
    """DMN 1.4 `is()`: same type and same value, where temporal values must also agree in
    how their zone is written (`@"10:00Z"` is not `@"10:00@Etc/UTC"`)."""
    if first is None or second is None:
        return first is None and second is None
    if kind_of(first) != kind_of(second):
        return False
    if isinstance(first, (dt.time, dt.datetime)):
        return _same_temporal(first, second)
    return values_equal(first, second) is True


def _same_temporal(first: dt.time | dt.datetime, second: dt.time | dt.datetime) -> bool:
    if first.replace(tzinfo=None) != second.replace(tzinfo=None):
        return False
    first_zone, second_zone = first.tzinfo, second.tzinfo
    if first_zone is None or second_zone is None:
        return first_zone is second_zone
    if isinstance(first_zone, ZoneInfo) or isinstance(second_zone, ZoneInfo):
        return (
            isinstance(first_zone, ZoneInfo)
            and isinstance(second_zone, ZoneInfo)
            and first_zone.key == second_zone.key
        )
    reference = dt.datetime(2000, 1, 1)
    return first_zone.utcoffset(reference) == second_zone.utcoffset(reference)


_CONSTANT_CONSTRUCTORS = frozenset({"date", "time", "date and time", "duration"})


def _is_constant_endpoint(node: ast.Node) -> bool:
    if isinstance(node, (ast.Const, ast.TemporalLiteral)):
        return True
    if isinstance(node, ast.Negate):
        return isinstance(node.operand, ast.Const)
    return (
        isinstance(node, ast.Call)
        and node.function_name in _CONSTANT_CONSTRUCTORS
        and node.positional is not None
        and len(node.positional) == 1
        and isinstance(node.positional[0], ast.Const)
        and isinstance(node.positional[0].value, str)
    )


@builtin("range", "from")
def range_(text: Any) -> FeelRange:
    """DMN 1.5 `range("[1..3]")`: a range literal with literal end points."""
    from engine.feel.errors import FeelSyntaxError
    from engine.feel.parser import parse

    try:
        tree = parse(string(text).strip())
    except FeelSyntaxError as error:
        raise InvalidArgument(f"not a range: {error}") from None
    if not isinstance(tree, ast.RangeLiteral):
        raise InvalidArgument("not a range literal")
    if not (_is_constant_endpoint(tree.start) and _is_constant_endpoint(tree.end)):
        raise InvalidArgument("range end points must be literals")
    value = evaluate_constant(tree)
    if value.start is None or value.end is None:
        raise InvalidArgument("range end points must not be null")
    if kind_of(value.start) != kind_of(value.end):
        raise InvalidArgument("range end points of different types")
    return value
