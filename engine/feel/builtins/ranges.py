"""Range built-ins (DMN 1.3 table 78, feel-scala BuiltinRangeFunction): before, after,
meets, met by, overlaps, overlaps before/after, finishes, finished by, includes, during,
starts, started by, coincides. Each works on points and ranges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.feel.builtins.registry import InvalidArgument, builtin
from engine.feel.values import FeelRange, compare_values


def _cmp(left: Any, right: Any) -> int:
    if isinstance(left, (str, bool)) or isinstance(right, (str, bool)):
        # feel-scala's range functions take numbers and temporal values only
        raise InvalidArgument("range functions need numbers or temporal values")
    order = compare_values(left, right)
    if order is None:
        raise InvalidArgument(f"can't compare {left!r} with {right!r}")
    return order


def _lt(a: Any, b: Any) -> bool:
    return _cmp(a, b) < 0


def _gt(a: Any, b: Any) -> bool:
    return _cmp(a, b) > 0


def _eq(a: Any, b: Any) -> bool:
    return _cmp(a, b) == 0


def _is_range(value: Any) -> bool:
    return isinstance(value, FeelRange)


def before(a: Any, b: Any) -> bool:
    if not _is_range(a) and not _is_range(b):
        return _lt(a, b)
    if not _is_range(a):
        return _lt(a, b.start) or (_eq(a, b.start) and not b.start_included)
    if not _is_range(b):
        return _lt(a.end, b) or (_eq(a.end, b) and not a.end_included)
    return _lt(a.end, b.start) or ((not a.end_included or not b.start_included) and _eq(a.end, b.start))


def after(a: Any, b: Any) -> bool:
    if not _is_range(a) and not _is_range(b):
        return _gt(a, b)
    if not _is_range(a):
        return _gt(a, b.end) or (_eq(a, b.end) and not b.end_included)
    if not _is_range(b):
        return _gt(a.start, b) or (_eq(a.start, b) and not a.start_included)
    return _gt(a.start, b.end) or ((not a.start_included or not b.end_included) and _eq(a.start, b.end))


def _ranges(a: Any, b: Any) -> tuple[FeelRange, FeelRange]:
    if not _is_range(a) or not _is_range(b):
        raise InvalidArgument("expected two ranges")
    return a, b


def meets(a: Any, b: Any) -> bool:
    a, b = _ranges(a, b)
    return a.end_included and b.start_included and _eq(a.end, b.start)


def met_by(a: Any, b: Any) -> bool:
    a, b = _ranges(a, b)
    return a.start_included and b.end_included and _eq(a.start, b.end)


def overlaps(a: Any, b: Any) -> bool:
    a, b = _ranges(a, b)
    return (_gt(a.end, b.start) or (_eq(a.end, b.start) and a.end_included and b.start_included)) and (
        _lt(a.start, b.end) or (_eq(a.start, b.end) and a.start_included and b.end_included)
    )


def overlaps_before(a: Any, b: Any) -> bool:
    a, b = _ranges(a, b)
    return (
        (_lt(a.start, b.start) or (_eq(a.start, b.start) and a.start_included and not b.start_included))
        and (_gt(a.end, b.start) or (_eq(a.end, b.start) and a.end_included and b.start_included))
        and (_lt(a.end, b.end) or (_eq(a.end, b.end) and (not a.end_included or b.end_included)))
    )


def overlaps_after(a: Any, b: Any) -> bool:
    a, b = _ranges(a, b)
    return overlaps_before(b, a)


def finishes(a: Any, b: Any) -> bool:
    if not _is_range(b):
        raise InvalidArgument("finishes() needs a range as second argument")
    if not _is_range(a):
        return b.end_included and _eq(b.end, a)
    return (
        a.end_included == b.end_included
        and _eq(a.end, b.end)
        and (_gt(a.start, b.start) or (_eq(a.start, b.start) and (not a.start_included or b.start_included)))
    )


def finished_by(a: Any, b: Any) -> bool:
    if not _is_range(a):
        raise InvalidArgument("finished by() needs a range as first argument")
    if not _is_range(b):
        return a.end_included and _eq(a.end, b)
    return finishes(b, a)


def includes(a: Any, b: Any) -> bool:
    if not _is_range(a):
        raise InvalidArgument("includes() needs a range as first argument")
    if not _is_range(b):
        return (
            (_lt(a.start, b) and _gt(a.end, b))
            or (_eq(a.start, b) and a.start_included)
            or (_eq(a.end, b) and a.end_included)
        )
    return (
        _lt(a.start, b.start) or (_eq(a.start, b.start) and (a.start_included or not b.start_included))
    ) and (_gt(a.end, b.end) or (_eq(a.end, b.end) and (a.end_included or not b.end_included)))


def during(a: Any, b: Any) -> bool:
    return includes(b, a)


def starts(a: Any, b: Any) -> bool:
    if not _is_range(b):
        raise InvalidArgument("starts() needs a range as second argument")
    if not _is_range(a):
        return b.start_included and _eq(b.start, a)
    return (
        _eq(a.start, b.start)
        and a.start_included == b.start_included
        and (_lt(a.end, b.end) or (_eq(a.end, b.end) and (not a.end_included or b.end_included)))
    )


def started_by(a: Any, b: Any) -> bool:
    return starts(b, a)


def coincides(a: Any, b: Any) -> bool:
    if not _is_range(a) and not _is_range(b):
        return _eq(a, b)
    a, b = _ranges(a, b)
    return (
        _eq(a.start, b.start)
        and a.start_included == b.start_included
        and _eq(a.end, b.end)
        and a.end_included == b.end_included
    )


_FUNCTIONS: dict[str, Callable[[Any, Any], bool]] = {
    "before": before,
    "after": after,
    "meets": meets,
    "met by": met_by,
    "overlaps": overlaps,
    "overlaps before": overlaps_before,
    "overlaps after": overlaps_after,
    "finishes": finishes,
    "finished by": finished_by,
    "includes": includes,
    "during": during,
    "starts": starts,
    "started by": started_by,
    "coincides": coincides,
}

_PARAMETER_NAMES = ("point1, point2", "point, range", "range, point", "range1, range2")

for _name, _function in _FUNCTIONS.items():
    for _parameters in _PARAMETER_NAMES:
        builtin(_name, _parameters)(_function)
