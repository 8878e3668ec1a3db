"""FEEL temporal values: parsing, formatting, properties and arithmetic.

Representation (feel-scala type in brackets):
  date                      -> `datetime.date`                      [ValDate]
  time (local / with offset) -> `datetime.time` (tzinfo None / set)  [ValLocalTime / ValTime]
  date and time             -> `datetime.datetime` (naive / aware)  [ValLocalDateTime / ValDateTime]
  days and time duration    -> `datetime.timedelta`                 [ValDayTimeDuration]
  years and months duration -> `YearMonthDuration`                  [ValYearMonthDuration]
Named zones use `zoneinfo`. Years outside 1..9999 are not representable and evaluate to null.
Digits below the microsecond (java.time keeps nine) ride along in `NanoTime` / `NanoDateTime`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

_T = TypeVar("_T", dt.time, dt.datetime)

# A year of more than four digits has no leading zero (java.time / XML Schema: `01211` is invalid).
_DATE = r"(?P<year>-?(?:\d{4}|[1-9]\d{4,8}))-(?P<month>\d{2})-(?P<day>\d{2})"
_TIME = (
    r"(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2}(?::\d{2})?)?"
    r"(?:@(?P<zone>[A-Za-z][A-Za-z0-9_+\-/]*)|\[(?P<bracket_zone>[A-Za-z][A-Za-z0-9_+\-/]*)\])?"
)
_DATE_RE = re.compile(_DATE + r"$")
_TIME_RE = re.compile(_TIME + r"$")
_DATE_TIME_RE = re.compile(_DATE + "T" + _TIME + r"$")
_DURATION_RE = re.compile(
    r"(?P<sign>-)?P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?"
    r"(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class YearMonthDuration:
    """A years-and-months duration, stored as a signed number of months."""

    __slots__ = ("months",)

    def __init__(self, months: int) -> None:
        self.months = months

    def __eq__(self, other: object) -> bool:
        return isinstance(other, YearMonthDuration) and other.months == self.months

    def __lt__(self, other: YearMonthDuration) -> bool:
        return self.months < other.months

    def __le__(self, other: YearMonthDuration) -> bool:
        return self.months <= other.months

    def __gt__(self, other: YearMonthDuration) -> bool:
        return self.months > other.months

    def __ge__(self, other: YearMonthDuration) -> bool:
        return self.months >= other.months

    def __hash__(self) -> int:
        return hash(("ym", self.months))

    def __repr__(self) -> str:
        return f"YearMonthDuration({format_year_month_duration(self)})"


class _SubMicroseconds:
    """Digits below the microsecond, which java.time (feel-scala) keeps and Python's datetime
    does not: `nanos` (1..999) are the nanoseconds beyond `microsecond`. Parsing, formatting,
    comparison and the time() / date and time() conversions keep them; arithmetic works at
    microsecond precision (its result is a plain time / date-time)."""

    # Class default: datetime's own arithmetic (`value + timedelta`) builds instances of the
    # subclass without calling `with_nanos`, and those have no digits below the microsecond.
    nanos: int = 0

    def _key_equal(self, other: object) -> bool | None:
        equal = super().__eq__(other)
        if equal is NotImplemented:
            return None
        return bool(equal)

    def __eq__(self, other: object) -> bool:
        equal = self._key_equal(other)
        if equal is None:
            return NotImplemented
        return equal and self.nanos == nanos_of(other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __lt__(self, other: Any) -> bool:
        if self._key_equal(other):
            return self.nanos < nanos_of(other)
        return super().__lt__(other)  # type: ignore[misc]

    def __le__(self, other: Any) -> bool:
        if self._key_equal(other):
            return self.nanos <= nanos_of(other)
        return super().__le__(other)  # type: ignore[misc]

    def __gt__(self, other: Any) -> bool:
        if self._key_equal(other):
            return self.nanos > nanos_of(other)
        return super().__gt__(other)  # type: ignore[misc]

    def __ge__(self, other: Any) -> bool:
        if self._key_equal(other):
            return self.nanos >= nanos_of(other)
        return super().__ge__(other)  # type: ignore[misc]

    def __hash__(self) -> int:
        return super().__hash__()


class NanoTime(_SubMicroseconds, dt.time):
    """A time with digits below the microsecond (see `_SubMicroseconds`)."""


class NanoDateTime(_SubMicroseconds, dt.datetime):
    """A date and time with digits below the microsecond (see `_SubMicroseconds`)."""


def nanos_of(value: object) -> int:
    """The nanoseconds beyond the microsecond of a time / date-time (0 for most)."""
    return getattr(value, "nanos", 0)


def with_nanos(value: _T, nanos: int) -> _T:
    """`value` carrying `nanos` nanoseconds beyond its microsecond."""
    if not nanos:
        return value
    result: Any
    if isinstance(value, dt.datetime):
        result = NanoDateTime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
            fold=value.fold,
        )
    else:
        result = NanoTime(
            value.hour, value.minute, value.second, value.microsecond, value.tzinfo, fold=value.fold
        )
    result.nanos = nanos
    return result


TEMPORAL_TYPES = (dt.date, dt.time, dt.timedelta, YearMonthDuration)


def zone_named(name: str) -> ZoneInfo:
    """A region zone such as `Europe/Berlin` (ValueError when unknown)."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError(f"unknown time zone '{name}'") from None


def _zone(offset: str | None, zone: str | None) -> dt.tzinfo | None:
    if zone:
        try:
            return ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            raise ValueError(f"unknown time zone '{zone}'") from None
    if offset is None:
        return None
    if offset in ("Z", "z"):
        return dt.UTC
    sign = -1 if offset[0] == "-" else 1
    parts = [int(part) for part in offset[1:].split(":")]
    delta = dt.timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2] if len(parts) > 2 else 0)
    if delta > dt.timedelta(hours=18):
        raise ValueError("offset out of range")
    return dt.timezone(sign * delta)


def _time_parts(match: re.Match[str]) -> tuple[int, int, int, int, dt.tzinfo | None, int]:
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    fraction = match["fraction"] or ""
    # java.time keeps nine digits (nanoseconds): six are microseconds, three go to `nanos`
    digits = (fraction + "000000000")[:9]
    microsecond, nanos = int(digits[:6]), int(digits[6:])
    if match["offset"] and match["zone"]:
        # `10:00+02:00@Europe/Paris`: an offset and an @zone together are ambiguous, and
        # feel-scala does not parse them (DMN TCK 1116/1117 expect null); the ISO form with a
        # bracketed zone (`+01:00[Europe/Paris]`) stays valid.
        raise ValueError("both an offset and a time zone")
    zone = match["zone"] or match["bracket_zone"]
    return hour, minute, second, microsecond, _zone(match["offset"], zone), nanos


def parse_date(text: str) -> dt.date | None:
    match = _DATE_RE.match(text)
    if not match:
        return None
    try:
        return dt.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return None


def parse_time(text: str) -> dt.time | None:
    match = _TIME_RE.match(text)
    if not match:
        return None
    try:
        hour, minute, second, microsecond, zone, nanos = _time_parts(match)
        # (a time with a region zone has no fixed offset; feel-scala keeps the zone)
        return with_nanos(dt.time(hour, minute, second, microsecond, tzinfo=zone), nanos)
    except ValueError:
        return None


def parse_date_time(text: str) -> dt.datetime | None:
    match = _DATE_TIME_RE.match(text)
    if not match:
        return None
    try:
        hour, minute, second, microsecond, zone, nanos = _time_parts(match)
        if hour == 24 and minute == 0 and second == 0 and microsecond == 0 and nanos == 0:
            base = dt.datetime(int(match["year"]), int(match["month"]), int(match["day"]), tzinfo=zone)
            return base + dt.timedelta(days=1)
        value = dt.datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            hour,
            minute,
            second,
            microsecond,
            tzinfo=zone,
        )
        return with_nanos(value, nanos)
    except (ValueError, OverflowError):
        return None


def parse_duration(text: str) -> dt.timedelta | YearMonthDuration | None:
    match = _DURATION_RE.match(text)
    if not match:
        return None
    sign = -1 if match["sign"] else 1
    years, months = match["years"], match["months"]
    # Java's Period/Duration syntax: no weeks (`P1W` is not a FEEL duration)
    day_time = [match[name] for name in ("days", "hours", "minutes", "seconds")]
    if (years or months) and not any(day_time):
        return YearMonthDuration(sign * (int(years or 0) * 12 + int(months or 0)))
    if years or months:
        return None
    seconds = Decimal(match["seconds"] or 0)
    try:
        delta = dt.timedelta(
            days=int(match["days"] or 0),
            hours=int(match["hours"] or 0),
            minutes=int(match["minutes"] or 0),
            seconds=int(seconds),
            microseconds=int((seconds - int(seconds)) * 1_000_000),
        )
    except OverflowError:
        return None
    return -delta if sign < 0 else delta


def parse_temporal_literal(text: str) -> Any:
    """`@"..."`: date and time, date, time or duration, whichever matches."""
    for parser in (parse_date_time, parse_date, parse_time, parse_duration):
        value = parser(text)
        if value is not None:
            return value
    return None


# formatting --------------------------------------------------------------------------------


def _format_fraction(microsecond: int, nanos: int = 0) -> str:
    if not microsecond and not nanos:
        return ""
    return "." + f"{microsecond:06d}{nanos:03d}".rstrip("0")


def format_date(value: dt.date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _format_offset(offset: dt.timedelta) -> str:
    if not offset:
        return "Z"
    sign = "-" if offset < dt.timedelta(0) else "+"
    seconds = abs(int(offset.total_seconds()))
    text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    if seconds % 60:
        text += f":{seconds % 60:02d}"
    return text


def _format_clock(value: dt.time | dt.datetime) -> str:
    fraction = _format_fraction(value.microsecond, nanos_of(value))
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{fraction}"


def format_time(value: dt.time) -> str:
    text = _format_clock(value)
    if value.tzinfo is None:
        return text
    if isinstance(value.tzinfo, ZoneInfo):
        return f"{text}@{value.tzinfo.key}"
    offset = value.utcoffset()
    return text + _format_offset(offset or dt.timedelta(0))


def format_date_time(value: dt.datetime, *, zone_style: str = "at") -> str:
    """`zone_style` "at" gives feel-scala's `string()` form (`...@Europe/Berlin`), "bracket"
    gives Java's ISO_ZONED_DATE_TIME (`...+01:00[Europe/Berlin]`)."""
    text = f"{format_date(value)}T{_format_clock(value)}"
    if value.tzinfo is None:
        return text
    if isinstance(value.tzinfo, ZoneInfo):
        if zone_style == "at":
            return f"{text}@{value.tzinfo.key}"
        return f"{text}{_format_offset(value.utcoffset() or dt.timedelta(0))}[{value.tzinfo.key}]"
    return text + _format_offset(value.utcoffset() or dt.timedelta(0))


def format_day_time_duration(value: dt.timedelta) -> str:
    """feel-scala's format: `P1DT2H3M4S`, zero is `P0D`, negative `-P1D`."""
    negative = value < dt.timedelta(0)
    value = abs(value)
    days = value.days
    seconds = value.seconds
    hours, minutes, secs = seconds // 3600, seconds % 3600 // 60, seconds % 60
    text = "P"
    if days:
        text += f"{days}D"
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if secs or value.microseconds:
        time_part += f"{secs}{_format_fraction(value.microseconds)}S"
    if time_part:
        text += "T" + time_part
    if text == "P":
        text = "P0D"
    return ("-" if negative else "") + text


def format_year_month_duration(value: YearMonthDuration) -> str:
    months = abs(value.months)
    years, rest = divmod(months, 12)
    text = "P"
    if years:
        text += f"{years}Y"
    if rest:
        text += f"{rest}M"
    if text == "P":
        text = "P0Y"
    return ("-" if value.months < 0 else "") + text


def format_temporal(value: Any, *, zone_style: str = "at") -> str:
    if isinstance(value, dt.datetime):
        return format_date_time(value, zone_style=zone_style)
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, dt.time):
        return format_time(value)
    if isinstance(value, dt.timedelta):
        return format_day_time_duration(value)
    if isinstance(value, YearMonthDuration):
        return format_year_month_duration(value)
    raise TypeError(f"not a temporal value: {value!r}")


# properties ----------------------------------------------------------------------------------


def _zone_name(tzinfo: dt.tzinfo | None) -> str | None:
    if isinstance(tzinfo, ZoneInfo):
        return tzinfo.key
    return None


def temporal_property(value: Any, name: str) -> tuple[bool, Any]:
    """(found, property value) for `value.name`."""
    if isinstance(value, dt.date):
        if name == "year":
            return True, Decimal(value.year)
        if name == "month":
            return True, Decimal(value.month)
        if name == "day":
            return True, Decimal(value.day)
        if name == "weekday":
            return True, Decimal(value.isoweekday())
    if isinstance(value, (dt.time, dt.datetime)):
        if name == "hour":
            return True, Decimal(value.hour)
        if name == "minute":
            return True, Decimal(value.minute)
        if name == "second":
            return True, Decimal(value.second)
        if name == "time offset":
            if value.tzinfo is None:
                return True, None
            if isinstance(value, dt.time):
                return True, value.utcoffset()
            return True, value.utcoffset()
        if name == "timezone":
            return True, _zone_name(value.tzinfo)
    if isinstance(value, dt.timedelta):
        sign = -1 if value < dt.timedelta(0) else 1
        magnitude = abs(value)
        if name == "days":
            return True, Decimal(sign * magnitude.days)
        if name == "hours":
            return True, Decimal(sign * (magnitude.seconds // 3600))
        if name == "minutes":
            return True, Decimal(sign * (magnitude.seconds % 3600 // 60))
        if name == "seconds":
            return True, Decimal(sign * (magnitude.seconds % 60))
    if isinstance(value, YearMonthDuration):
        sign = -1 if value.months < 0 else 1
        if name == "years":
            return True, Decimal(sign * (abs(value.months) // 12))
        if name == "months":
            return True, Decimal(sign * (abs(value.months) % 12))
    return False, None


# arithmetic ----------------------------------------------------------------------------------


def add_months(value: dt.date, months: int) -> dt.date:
    """Java `plusMonths`: clamp the day to the end of the target month."""
    month_index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _time_as_datetime(value: dt.time) -> dt.datetime:
    return dt.datetime.combine(dt.date(2000, 1, 1), value)


def _add_to_time(value: dt.time, delta: dt.timedelta) -> dt.time:
    shifted = (_time_as_datetime(value.replace(tzinfo=None)) + delta).time()
    return shifted.replace(tzinfo=value.tzinfo)


def _aware(value: dt.datetime | dt.time) -> bool:
    return value.tzinfo is not None


def add(left: Any, right: Any) -> Any:
    """`left + right` for temporal operands; None when the combination is not defined."""
    if isinstance(right, (dt.date, dt.time)) and not isinstance(left, (dt.date, dt.time)):
        left, right = right, left
    if isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta):
        return left + right
    if isinstance(left, YearMonthDuration) and isinstance(right, YearMonthDuration):
        return YearMonthDuration(left.months + right.months)
    if isinstance(left, dt.datetime):
        if isinstance(right, dt.timedelta):
            return _shift_date_time(left, right)
        if isinstance(right, YearMonthDuration):
            return add_months(left, right.months)
        return None
    if isinstance(left, dt.date):
        if isinstance(right, dt.timedelta):
            # feel-scala: the date at start of day plus the duration, then the date part.
            return (dt.datetime.combine(left, dt.time()) + right).date()
        if isinstance(right, YearMonthDuration):
            return add_months(left, right.months)
        return None
    if isinstance(left, dt.time) and isinstance(right, dt.timedelta):
        return _add_to_time(left, right)
    return None


def _shift_date_time(value: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    if isinstance(value.tzinfo, ZoneInfo):
        # Durations on zoned date-times are exact instants (Java ZonedDateTime.plus(Duration)).
        utc = value.astimezone(dt.UTC) + delta
        return utc.astimezone(value.tzinfo)
    return value + delta


def negate(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        return -value
    if isinstance(value, YearMonthDuration):
        return YearMonthDuration(-value.months)
    return None


def subtract(left: Any, right: Any) -> Any:
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        if _aware(left) != _aware(right):
            return None
        return left - right
    if type(left) is dt.date and type(right) is dt.date:
        return dt.timedelta(days=(left - right).days)
    if isinstance(left, dt.time) and isinstance(right, dt.time):
        if _aware(left) != _aware(right):
            return None
        if _aware(left):
            base = dt.date(2000, 1, 1)
            return dt.datetime.combine(base, left) - dt.datetime.combine(base, right)
        return _time_as_datetime(left) - _time_as_datetime(right)
    if isinstance(right, (dt.timedelta, YearMonthDuration)) and isinstance(
        left, (dt.date, dt.time, dt.timedelta, YearMonthDuration)
    ):
        return add(left, negate(right))
    return None


def multiply(left: Any, right: Any) -> Any:
    if isinstance(left, Decimal):
        left, right = right, left
    if not isinstance(right, Decimal):
        return None
    if isinstance(left, dt.timedelta):
        micros = Decimal(left // dt.timedelta(microseconds=1)) * right
        return dt.timedelta(microseconds=int(micros))
    if isinstance(left, YearMonthDuration):
        return YearMonthDuration(int(Decimal(left.months) * right))
    return None


def divide(left: Any, right: Any) -> Any:
    if isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta):
        if not right:
            return None
        return Decimal(left // dt.timedelta(microseconds=1)) / Decimal(right // dt.timedelta(microseconds=1))
    if isinstance(left, YearMonthDuration) and isinstance(right, YearMonthDuration):
        if not right.months:
            return None
        return Decimal(left.months) / Decimal(right.months)
    if isinstance(right, Decimal) and right:
        if isinstance(left, dt.timedelta):
            micros = Decimal(left // dt.timedelta(microseconds=1)) / right
            return dt.timedelta(microseconds=int(micros))
        if isinstance(left, YearMonthDuration):
            return YearMonthDuration(int(Decimal(left.months) / right))
    return None


def years_and_months_between(start: dt.date, end: dt.date) -> YearMonthDuration:
    """feel-scala: `Period.between(start.toLocalDate, end.toLocalDate).withDays(0)` - only
    the date parts count, partial months are dropped."""
    start_date = start.date() if isinstance(start, dt.datetime) else start
    end_date = end.date() if isinstance(end, dt.datetime) else end
    months = (end_date.year - start_date.year) * 12 + (end_date.month - start_date.month)
    if months > 0 and end_date.day < start_date.day:
        months -= 1
    elif months < 0 and end_date.day > start_date.day:
        months += 1
    return YearMonthDuration(months)
