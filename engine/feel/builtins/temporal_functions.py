"""Temporal built-ins: date(), time(), date and time(), duration(), years and months
duration(), now(), today(), day of week/year, week of year, month of year, last day of month.

`now()` is a zoned date-time in UTC (Zeebe's clock zone in a default deployment)."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any

from engine.feel import temporal
from engine.feel.builtins.registry import InvalidArgument, builtin, integer, number, string


def _date_part(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise InvalidArgument(f"expected a date but found {value!r}")


@builtin("date", "from")
def date_from(value: Any) -> dt.date:
    if isinstance(value, str):
        parsed = temporal.parse_date(value)
        if parsed is None:
            date_time = temporal.parse_date_time(value)
            if date_time is None:
                raise InvalidArgument(f"'{value}' is not a date")
            return date_time.date()
        return parsed
    return _date_part(value)


@builtin("date", "year, month, day")
def date_parts(year: Any, month: Any, day: Any) -> dt.date:
    try:
        return dt.date(integer(year), integer(month), integer(day))
    except ValueError as error:
        raise InvalidArgument(str(error)) from None


@builtin("time", "from")
def time_from(value: Any) -> dt.time:
    if isinstance(value, str):
        text = value[1:] if value.startswith("T") else value
        parsed = temporal.parse_time(text)
        if parsed is None:
            date_time = temporal.parse_date_time(value)
            if date_time is None:
                raise InvalidArgument(f"'{value}' is not a time")
            return temporal.with_nanos(date_time.timetz(), temporal.nanos_of(date_time))
        return parsed
    if isinstance(value, dt.datetime):
        return temporal.with_nanos(value.timetz(), temporal.nanos_of(value))
    if isinstance(value, dt.date):
        return dt.time(0, 0, 0, tzinfo=dt.UTC)
    if isinstance(value, dt.time):
        return value
    raise InvalidArgument(f"expected a time but found {value!r}")


@builtin("time", "hour, minute, second")
def time_parts(hour: Any, minute: Any, second: Any) -> dt.time:
    return time_parts_offset(hour, minute, second, None)


@builtin("time", "hour, minute, second, offset")
def time_parts_offset(hour: Any, minute: Any, second: Any, offset: Any) -> dt.time:
    seconds = number(second)
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    zone: dt.tzinfo | None = None
    if offset is not None:
        if not isinstance(offset, dt.timedelta):
            raise InvalidArgument("offset must be a days and time duration")
        zone = dt.timezone(offset)
    try:
        return dt.time(integer(hour), integer(minute), whole, micros, tzinfo=zone)
    except ValueError as error:
        raise InvalidArgument(str(error)) from None


@builtin("date and time", "from")
def date_and_time_from(value: Any) -> dt.datetime:
    # feel-scala accepts only a string here (a date string means midnight)
    parsed = temporal.parse_date_time(string(value))
    if parsed is None:
        date_only = temporal.parse_date(value)
        if date_only is None:
            raise InvalidArgument(f"'{value}' is not a date and time")
        return dt.datetime.combine(date_only, dt.time())
    return parsed


@builtin("date and time", "date, time")
def date_and_time_parts(date: Any, time: Any) -> dt.datetime:
    if isinstance(date, dt.datetime) and isinstance(time, str):
        # feel-scala: date and time(date time, timezone) - the same instant in that zone
        # for a zoned value, the local value placed in that zone otherwise
        zone = temporal.zone_named(time)
        if date.tzinfo is None:
            return date.replace(tzinfo=zone)
        return date.astimezone(zone)
    if not isinstance(time, dt.time):
        raise InvalidArgument("expected a time")
    return temporal.with_nanos(dt.datetime.combine(_date_part(date), time), temporal.nanos_of(time))


@builtin("duration", "from")
def duration(value: Any) -> Any:
    parsed = temporal.parse_duration(string(value))
    if parsed is None:
        raise InvalidArgument(f"'{value}' is not a duration")
    return parsed


@builtin("years and months duration", "from, to")
def years_and_months_duration(start: Any, end: Any) -> temporal.YearMonthDuration:
    if not isinstance(start, dt.date) or not isinstance(end, dt.date):
        raise InvalidArgument("expected dates")
    return temporal.years_and_months_between(start, end)


@builtin("now")
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@builtin("today")
def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@builtin("day of week", "date")
def day_of_week(value: Any) -> str:
    return calendar.day_name[_date_part(value).weekday()]


@builtin("day of year", "date")
def day_of_year(value: Any) -> Decimal:
    return Decimal(_date_part(value).timetuple().tm_yday)


@builtin("week of year", "date")
def week_of_year(value: Any) -> Decimal:
    return Decimal(_date_part(value).isocalendar()[1])


@builtin("month of year", "date")
def month_of_year(value: Any) -> str:
    return calendar.month_name[_date_part(value).month]


@builtin("last day of month", "date")
def last_day_of_month(value: Any) -> dt.date:
    date = _date_part(value)
    return date.replace(day=calendar.monthrange(date.year, date.month)[1])
