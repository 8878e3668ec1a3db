"""FEEL operators on values: arithmetic, comparison, paths and list positions.

Each returns None (FEEL null) for operand types it does not define; the compiler records
the warning. Numbers use `values.DECIMAL_CONTEXT` (feel-scala's DECIMAL128).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine.feel import temporal
from engine.feel.scope import Scope
from engine.feel.values import (
    DECIMAL_CONTEXT,
    MISSING,
    FeelRange,
    compare_values,
    kind_of,
    values_equal,
)


def arithmetic_failure(scope: Scope, operator: str, left: Any, right: Any) -> None:
    scope.warnings.append(f"[INVALID_TYPE] Can't apply '{operator}' to {kind_of(left)} and {kind_of(right)}")


def _temporal(operation: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    """Temporal arithmetic; a result outside the representable range is null."""
    try:
        return operation(left, right)
    except (OverflowError, ValueError, ArithmeticError):
        return None


def add(left: Any, right: Any) -> Any:
    left_type, right_type = type(left), type(right)
    if left_type is Decimal and right_type is Decimal:
        return DECIMAL_CONTEXT.add(left, right)
    if left_type is str and right_type is str:
        return left + right
    if left is None or right is None:
        return None
    return _temporal(temporal.add, left, right)


def subtract(left: Any, right: Any) -> Any:
    if type(left) is Decimal and type(right) is Decimal:
        return DECIMAL_CONTEXT.subtract(left, right)
    if left is None or right is None:
        return None
    return _temporal(temporal.subtract, left, right)


def multiply(left: Any, right: Any) -> Any:
    if type(left) is Decimal and type(right) is Decimal:
        return DECIMAL_CONTEXT.multiply(left, right)
    if left is None or right is None:
        return None
    return _temporal(temporal.multiply, left, right)


def divide(left: Any, right: Any) -> Any:
    if type(left) is Decimal and type(right) is Decimal:
        if not right:
            return None  # feel-scala: division by zero -> null (no NaN / Infinity)
        return DECIMAL_CONTEXT.divide(left, right)
    if left is None or right is None:
        return None
    return _temporal(temporal.divide, left, right)


def power(left: Any, right: Any) -> Any:
    if type(left) is not Decimal or type(right) is not Decimal:
        return None
    try:
        if right == right.to_integral_value() and abs(right) <= 999_999_999:
            # feel-scala: BigDecimal.pow(int, DECIMAL128) for whole exponents
            return DECIMAL_CONTEXT.power(left, right.to_integral_value())
        # ... and Math.pow on doubles otherwise; Decimal is at least as precise.
        return DECIMAL_CONTEXT.power(left, right)
    except (decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow):
        return None


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "**": power,
}


def negate(value: Any) -> Any:
    if type(value) is Decimal:
        return DECIMAL_CONTEXT.minus(value)
    return temporal.negate(value)


# comparison ---------------------------------------------------------------------------------


def compare_operator(operator: str, left: Any, right: Any) -> bool | None:
    if operator == "=":
        return values_equal(left, right)
    if operator == "!=":
        equal = values_equal(left, right)
        return None if equal is None else not equal
    order = compare_values(left, right)
    if order is None:
        return None
    if operator == "<":
        return order < 0
    if operator == "<=":
        return order <= 0
    if operator == ">":
        return order > 0
    return order >= 0


# paths and filters ------------------------------------------------------------------------


def get_path(value: Any, key: str, scope: Scope) -> Any:
    value_type = type(value)
    if value_type is dict:
        result = value.get(key, MISSING)
        if result is MISSING:
            scope.warnings.append(f"[NO_CONTEXT_ENTRY_FOUND] No context entry found with key '{key}'")
            return None
        return result
    if value_type is list:
        scope.budget.charge(len(value), 16 * len(value))
        return [get_path(item, key, scope) for item in value]
    if value is None:
        return None
    if isinstance(value, FeelRange):
        properties = {
            "start": value.start,
            "end": value.end,
            "start included": value.start_included,
            "end included": value.end_included,
        }
        if key in properties:
            return properties[key]
    found, result = temporal.temporal_property(value, key)
    if found:
        return result
    scope.warnings.append(f"[NO_PROPERTY_FOUND] No property '{key}' on {kind_of(value)}")
    return None


def list_item_at(items: list[Any], index: Decimal) -> Any:
    if index != index.to_integral_value():
        return None
    position = int(index)
    if 0 < position <= len(items):
        return items[position - 1]
    if position < 0 and -position <= len(items):
        return items[position]
    return None
