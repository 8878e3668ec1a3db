"""Boolean and miscellaneous built-ins: not, is defined (see compiler), get or else, assert."""

from __future__ import annotations

from typing import Any

from engine.feel.builtins.registry import InvalidArgument, builtin
from engine.feel.compiler import AssertionFailed


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
