"""List built-ins (feel-scala BuiltinListFunctions): aggregation, editing, set operations,
sorting. Positions are 1-based; negative positions count from the end; position 0 is
invalid (null), as in feel-scala (MANIFEST.md point 6)."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from decimal import Decimal
from typing import Any

from engine.feel.budget import charge_running, charges_as_it_goes
from engine.feel.builtins.registry import (
    InvalidArgument,
    builtin,
    function_value,
    integer,
    items_or_list,
    list_value,
    number,
)
from engine.feel.values import DECIMAL_CONTEXT, compare_values, values_equal


def _contains(items: list[Any], element: Any) -> bool:
    return any(values_equal(item, element) is True for item in items)


@builtin("list contains", "list, element")
def list_contains(items: Any, element: Any) -> bool:
    return _contains(list_value(items), element)


@builtin("count", "list")
def count(items: Any) -> Decimal:
    return Decimal(len(list_value(items)))


def _ordered(values: list[Any], pick: int) -> Any:
    if not values:
        return None
    best = values[0]
    for value in values[1:]:
        order = compare_values(value, best)
        if order is None and value is None:
            continue
        if order is None:
            raise InvalidArgument("list items are not comparable")
        if order == pick:
            best = value
    if len(values) == 1 and compare_values(best, best) is None:
        raise InvalidArgument("list item is not comparable")
    return best


def _min(values: list[Any]) -> Any:
    return _ordered(values, -1)


def _max(values: list[Any]) -> Any:
    return _ordered(values, 1)


def _numbers(values: list[Any]) -> list[Decimal]:
    return [number(value) for value in values]


def _sum(values: list[Any]) -> Decimal | None:
    numbers = _numbers(values)
    if not numbers:
        return None
    total = Decimal(0)
    for value in numbers:
        total = DECIMAL_CONTEXT.add(total, value)
    return total


def _mean(values: list[Any]) -> Decimal | None:
    total = _sum(values)
    if total is None:
        return None
    return DECIMAL_CONTEXT.divide(total, Decimal(len(values)))


def _median(values: list[Any]) -> Decimal | None:
    numbers = sorted(_numbers(values))
    if not numbers:
        return None
    middle = len(numbers) // 2
    if len(numbers) % 2:
        return numbers[middle]
    return DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.add(numbers[middle - 1], numbers[middle]), Decimal(2))


def _stddev(values: list[Any]) -> Decimal | None:
    numbers = _numbers(values)
    if len(numbers) < 2:
        return None
    mean = DECIMAL_CONTEXT.divide(sum(numbers, Decimal(0)), Decimal(len(numbers)))
    squares = sum(((value - mean) ** 2 for value in numbers), Decimal(0))
    return DECIMAL_CONTEXT.sqrt(DECIMAL_CONTEXT.divide(squares, Decimal(len(numbers) - 1)))


def _mode(values: list[Any]) -> list[Decimal]:
    numbers = _numbers(values)
    if not numbers:
        return []
    counts = Counter(numbers)
    highest = max(counts.values())
    return sorted(value for value, seen in counts.items() if seen == highest)


def _product(values: list[Any]) -> Decimal | None:
    numbers = _numbers(values)
    if not numbers:
        return None
    result = Decimal(1)
    for value in numbers:
        result = DECIMAL_CONTEXT.multiply(result, value)
    return result


for _name, _function in (
    ("min", _min),
    ("max", _max),
    ("sum", _sum),
    ("mean", _mean),
    ("median", _median),
    ("stddev", _stddev),
    ("mode", _mode),
    ("product", _product),
):
    # `list` names the parameter for `sum(list: [1, 2])`; positional calls take varargs
    builtin(_name, "list")(
        functools.partial(lambda function, items: function(items_or_list((items,))), _function)
    )
    builtin(_name, "items...")(
        functools.partial(lambda function, *items: function(items_or_list(items)), _function)
    )


def _all(values: list[Any]) -> bool | None:
    if any(value is False for value in values):
        return False
    if all(value is True for value in values):
        return True
    return None


def _any(values: list[Any]) -> bool | None:
    if any(value is True for value in values):
        return True
    if all(value is False for value in values):
        return False
    return None


for _name, _function in (("all", _all), ("and", _all), ("any", _any), ("or", _any)):
    builtin(_name, "list")(
        functools.partial(lambda function, items: function(items_or_list((items,))), _function)
    )
    builtin(_name, "items...")(
        functools.partial(lambda function, *items: function(items_or_list(items)), _function)
    )


def _position(items: list[Any], position: Any, *, allow_end: bool = False) -> int:
    """1-based (negative from the end) position -> 0-based index."""
    index = integer(position)
    size = len(items) + (1 if allow_end else 0)
    if index > 0 and index <= size:
        return index - 1
    if index < 0 and -index <= len(items):
        return len(items) + index
    raise InvalidArgument(f"position {index} out of range")


@builtin("sublist", "list, start position")
@builtin("sublist", "list, start")
def sublist(items: Any, start: Any) -> list[Any]:
    values = list_value(items)
    return values[_position(values, start) :]


@builtin("sublist", "list, start position, length")
@builtin("sublist", "list, start, length")
def sublist_length(items: Any, start: Any, length: Any) -> list[Any]:
    values = list_value(items)
    begin = _position(values, start)
    count = integer(length)
    if count < 0 or begin + count > len(values):
        raise InvalidArgument("length out of range")
    return values[begin : begin + count]


@builtin("append", "list, items...")
def append(items: Any, *new_items: Any) -> list[Any]:
    return [*list_value(items), *new_items]


@builtin("concatenate", "lists...")
def concatenate(*lists: Any) -> list[Any]:
    # feel-scala appends a non-list argument as a single item
    result: list[Any] = []
    for items in lists:
        if type(items) is list:
            result.extend(items)
        else:
            result.append(items)
    return result


@builtin("insert before", "list, position, newItem")
def insert_before(items: Any, position: Any, new_item: Any) -> list[Any]:
    values = list_value(items)
    index = _position(values, position)
    return [*values[:index], new_item, *values[index:]]


@builtin("remove", "list, position")
def remove(items: Any, position: Any) -> list[Any]:
    values = list_value(items)
    index = _position(values, position)
    return values[:index] + values[index + 1 :]


@builtin("list replace", "list, position, newItem")
def list_replace(items: Any, position: Any, new_item: Any) -> list[Any]:
    values = list_value(items)
    if isinstance(position, Decimal):
        index = _position(values, position)
        return [*values[:index], new_item, *values[index + 1 :]]
    return list_replace_matching(values, position, new_item)


@builtin("list replace", "list, match, newItem")
def list_replace_matching(items: Any, match: Any, new_item: Any) -> list[Any]:
    # DMN 1.5: `match` is a function(item, newItem) returning a boolean; any other arity, or
    # a non-boolean answer, is an invalid call (null), as the DMN TCK (1155) expects.
    values = list_value(items)
    matcher = function_value(match)
    if len(matcher.parameters) != 2:
        raise InvalidArgument(f"list replace: match must take (item, newItem), not {matcher!r}")
    result = []
    for item in values:
        verdict = matcher.invoke([item, new_item])
        if type(verdict) is not bool:
            raise InvalidArgument(f"list replace: match returned {verdict!r}, not a boolean")
        result.append(new_item if verdict else item)
    return result


@builtin("reverse", "list")
def reverse(items: Any) -> list[Any]:
    return list(reversed(list_value(items)))


@builtin("index of", "list, match")
def index_of(items: Any, match: Any) -> list[Decimal]:
    return [
        Decimal(position)
        for position, item in enumerate(list_value(items), start=1)
        if values_equal(item, match) is True
    ]


# Values whose FEEL equality is their Python equality within the same type (1 = 1.0, "a" = "a"),
# so they can be deduplicated through a set: `distinct values` of a 20,000-item variable would
# otherwise make 200 million comparisons on the partition's thread.
_HASHED_KINDS = frozenset({Decimal, str, bool, type(None), dt.date})


def _distinct(values: list[Any]) -> list[Any]:
    result: list[Any] = []
    seen: set[tuple[type, Any]] = set()
    compared: list[Any] = []  # lists, contexts, times, ...: compared pairwise, each pair charged
    for value in values:
        kind = type(value)
        if kind in _HASHED_KINDS:
            key = (kind, value)
            if key in seen:
                continue
            seen.add(key)
        else:
            charge_running(len(compared) + 1)
            if _contains(compared, value):
                continue
            compared.append(value)
        result.append(value)
    return result


@builtin("union", "lists...")
@charges_as_it_goes
def union(*lists: Any) -> list[Any]:
    return _distinct(concatenate(*lists))


@builtin("distinct values", "list")
@charges_as_it_goes
def distinct_values(items: Any) -> list[Any]:
    return _distinct(list_value(items))


@builtin("duplicate values", "list")
@charges_as_it_goes
def duplicate_values(items: Any) -> list[Any]:
    # the values that occur more than once, each once, in the order of their first occurrence
    counts: dict[tuple[type, Any], list[Any]] = {}  # key -> [first index, value, count]
    compared: list[list[Any]] = []  # [first index, value, count] of pairwise-compared values
    for index, value in enumerate(list_value(items)):
        kind = type(value)
        if kind in _HASHED_KINDS:
            entry = counts.get((kind, value))
            if entry is None:
                counts[(kind, value)] = [index, value, 1]
            else:
                entry[2] += 1
            continue
        charge_running(len(compared) + 1)
        for entry in compared:
            if values_equal(entry[1], value) is True:
                entry[2] += 1
                break
        else:
            compared.append([index, value, 1])
    repeated = [entry for entry in (*counts.values(), *compared) if entry[2] > 1]
    return [entry[1] for entry in sorted(repeated, key=lambda entry: entry[0])]


def _flatten(values: list[Any], into: list[Any], depth: int = 0) -> list[Any]:
    if depth > 200:
        raise InvalidArgument("list nested too deeply")
    for value in values:
        if type(value) is list:
            _flatten(value, into, depth + 1)
        else:
            into.append(value)
    return into


@builtin("flatten", "list")
def flatten(items: Any) -> list[Any]:
    return _flatten(list_value(items), [])


@builtin("sort", "list")
def sort_natural(items: Any) -> list[Any]:
    values = list_value(items)

    def order(left: Any, right: Any) -> int:
        result = compare_values(left, right)
        if result is None:
            raise InvalidArgument("list items are not comparable")
        return result

    return sorted(values, key=functools.cmp_to_key(order))


@builtin("sort", "list, precedes")
def sort(items: Any, precedes: Any) -> list[Any]:
    values = list_value(items)
    function = function_value(precedes)

    def order(left: Any, right: Any) -> int:
        if function.invoke([left, right]) is True:
            return -1
        if function.invoke([right, left]) is True:
            return 1
        return 0

    return sorted(values, key=functools.cmp_to_key(order))


@builtin("is empty", "list")
def is_empty(items: Any) -> bool:
    return not list_value(items)


@builtin("partition", "list, size")
def partition(items: Any, size: Any) -> list[list[Any]]:
    values = list_value(items)
    chunk = integer(size)
    if chunk <= 0:
        raise InvalidArgument("partition size must be positive")
    return [values[index : index + chunk] for index in range(0, len(values), chunk)]
