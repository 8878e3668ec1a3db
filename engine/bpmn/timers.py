"""Timer values of BPMN timer events: ISO 8601 durations, date-times and cycles, and cron.

A timer event definition holds one of (reference/zeebe-protocol.md §5.2 "Timers"):
- `timeDuration`: an ISO 8601 duration, `PT15S`, `P14DT1H30M`, `P1Y2M`, `PT0.5S` (Zeebe's
  `Interval`: a java.time Period for the date part, a Duration for the time part);
- `timeDate`: an ISO 8601 date-time with an offset or a zone, `2019-10-01T12:00:00Z`,
  `2026-12-02T10:00:00+01:00`, `2026-12-02T10:00:00+01:00[Europe/Berlin]`;
- `timeCycle`: a repeating interval `R5/PT10S`, `R/P1D` (forever), `R3/<start>/PT1H`, or a
  Spring-style 6-field cron expression `0 0 9-17 * * MON-FRI` (or a macro such as `@daily`),
  which repeats forever (Zeebe `CronTimer`).

Static values are checked at deploy time (`check_timer_text`); FEEL results are turned into
due dates at run time (`due_date`). Every failure raises `TimerError` with a message the
execution can put into an EXTRACT_VALUE_ERROR incident. Times are UTC epoch milliseconds;
calendar arithmetic (months, years, cron) is done in UTC, the zone of a Zeebe container.

Hostile input is refused rather than computed: texts longer than `MAX_TEXT_LENGTH`, numbers
with more digits than a java `long` has, repetition counts beyond a java `int` (Zeebe parses
them with `Integer.parseInt`), due dates after year 9999 (Zeebe: arithmetic overflow), and
cycles whose interval is not positive (they would fire in a tight loop forever).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CronExpression",
    "Cycle",
    "Interval",
    "TimerError",
    "check_timer_text",
    "due_date",
    "parse_cron",
    "parse_cycle",
    "parse_date",
    "parse_duration",
    "parse_interval",
]

#: Longest timer text accepted. Real ones are a few dozen characters; a zoned cycle with a
#: start is about 70.
MAX_TEXT_LENGTH = 256
#: Largest repetition count (java Integer.MAX_VALUE: Zeebe parses it with Integer.parseInt).
MAX_REPETITIONS = 2**31 - 1
#: Latest due date: the end of year 9999 (Zeebe computes due dates in java.time; beyond this
#: its arithmetic overflows and the deployment is rejected).
MAX_EPOCH_MS = int(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)
#: Earliest date accepted (year 1).
MIN_EPOCH_MS = int(dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
#: How far ahead a cron expression is searched for its next match (Feb 29 on a given weekday
#: recurs within 28 years).
CRON_SEARCH_DAYS = 366 * 29

_OVERFLOW = (
    "Timer duration is too large and results in arithmetic overflow. Please use a smaller duration value."
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TimerError(ValueError):
    """A timer text or value that cannot be used; `str()` is the user-facing reason."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TimerError(f"Expected a {what} as a string, but found '{type(text).__name__}'")
    text = text.strip()
    if not text:
        raise TimerError(f"Expected a {what}, but the value is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise TimerError(
            f"The {what} is {len(text)} characters long, longer than the limit of {MAX_TEXT_LENGTH}"
        )
    return text


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


# --- durations ---------------------------------------------------------------------------------

# java.time Period (Y, M, W, D) then Duration (H, M, S with up to 9 fraction digits). Each
# number is bounded to 18 digits so that nothing unbounded is ever converted.
_DURATION_RE = re.compile(
    r"(?P<sign>[-+])?P"
    r"(?:(?P<years>[-+]?\d{1,18})Y)?"
    r"(?:(?P<months>[-+]?\d{1,18})M)?"
    r"(?:(?P<weeks>[-+]?\d{1,18})W)?"
    r"(?:(?P<days>[-+]?\d{1,18})D)?"
    r"(?:T(?:(?P<hours>[-+]?\d{1,18})H)?"
    r"(?:(?P<minutes>[-+]?\d{1,18})M)?"
    r"(?:(?P<seconds>[-+]?\d{1,18}(?:[.,]\d{0,9})?)S)?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Interval:
    """An ISO 8601 duration split like Zeebe's `Interval`: calendar part and exact part.

    `months` (years folded in) and `days` are calendar amounts, added to a date in UTC;
    `milliseconds` is the exact time part (fractions below a millisecond are dropped, as
    Zeebe's `toEpochMilli` does).
    """

    months: int = 0
    days: int = 0
    milliseconds: int = 0
    text: str = ""

    @property
    def is_calendar_based(self) -> bool:
        return self.months != 0

    @property
    def is_negative(self) -> bool:
        return self.months < 0 or self.days < 0 or self.milliseconds < 0

    def add_to(self, from_ms: int) -> int:
        """The epoch millisecond `from_ms` plus this interval; TimerError on overflow."""
        try:
            start = _EPOCH + dt.timedelta(milliseconds=from_ms)
            if self.months:
                start = _add_months(start, self.months)
            result = start + dt.timedelta(days=self.days, milliseconds=self.milliseconds)
        except (OverflowError, ValueError):
            raise TimerError(_OVERFLOW) from None
        due = (result - _EPOCH) // dt.timedelta(milliseconds=1)
        if not MIN_EPOCH_MS <= due <= MAX_EPOCH_MS:
            raise TimerError(_OVERFLOW)
        return due

    def to_ms(self, from_ms: int | None = None) -> int:
        """Length in milliseconds when it starts at `from_ms` (default now: months vary)."""
        start = _now_ms() if from_ms is None else from_ms
        return self.add_to(start) - start


def _add_months(value: dt.datetime, months: int) -> dt.datetime:
    # java.time plusMonths: the day is clamped to the last day of the target month.
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def parse_interval(text: str, *, allow_negative: bool = False) -> Interval:
    """Parse an ISO 8601 duration (`P1DT2H`, `PT0.5S`, `P2W`, `P1Y2M`) into an `Interval`.

    Negative durations (`-PT5S`, `PT-5S`) are refused unless `allow_negative` (a FEEL
    duration computed at run time may be negative; Zeebe then fires at once).
    """
    text = _check_text(text, "duration")
    match = _DURATION_RE.fullmatch(text)
    if match is None or not any(
        match.group(name) for name in ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
    ):
        raise TimerError(
            f"Invalid duration '{_shown(text)}': expected an ISO 8601 duration such as 'PT15S', 'P1DT2H' or 'P1Y2M'"
        )
    if text.upper().endswith("T"):
        raise TimerError(
            f"Invalid duration '{_shown(text)}': 'T' must be followed by hours, minutes or seconds"
        )
    sign = -1 if match.group("sign") == "-" else 1

    def number(name: str) -> int:
        value = match.group(name)
        return int(value) if value else 0

    try:
        seconds = Decimal((match.group("seconds") or "0").replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern only admits digits
        raise TimerError(f"Invalid duration '{_shown(text)}'") from None
    months = sign * (number("years") * 12 + number("months"))
    days = sign * (number("weeks") * 7 + number("days"))
    milliseconds = sign * ((number("hours") * 3600 + number("minutes") * 60) * 1000 + int(seconds * 1000))
    interval = Interval(months=months, days=days, milliseconds=milliseconds, text=text)
    if interval.is_negative and not allow_negative:
        raise TimerError(f"Invalid duration '{_shown(text)}': a timer duration must not be negative")
    # Bound the amounts before any date arithmetic (a day count of 10^17 is not a timer).
    if (
        abs(months) > 12 * 10_000
        or abs(days) > 366 * 10_000
        or abs(milliseconds) > MAX_EPOCH_MS - MIN_EPOCH_MS
    ):
        raise TimerError(_OVERFLOW)
    return interval


def parse_duration(text: str, *, from_ms: int | None = None, allow_negative: bool = False) -> int:
    """Milliseconds of an ISO 8601 duration starting at `from_ms` (default now).

    Raises `TimerError` for anything that is not a usable duration.
    """
    interval = parse_interval(text, allow_negative=allow_negative)
    return interval.to_ms(from_ms)


# --- date-times ----------------------------------------------------------------------------------

_DATE_TIME_RE = re.compile(
    r"(?P<local>(?P<year>\d{4})-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?P<fraction>[.,]\d{1,9})?)?)"
    r"(?P<offset>Z|[+-]\d{2}:\d{2}(?::\d{2})?|[+-]\d{4})?"
    r"(?:\[(?P<zone>[A-Za-z][A-Za-z0-9_+\-/]{0,63})\])?",
    re.IGNORECASE,
)


def _parse_date_time(text: str) -> dt.datetime:
    match = _DATE_TIME_RE.fullmatch(text)
    if match is None:
        raise TimerError(
            f"Invalid date-time '{_shown(text)}': expected an ISO 8601 date-time with an offset or "
            "zone, e.g. '2026-12-02T10:00:00Z' or '2026-12-02T10:00:00+01:00[Europe/Berlin]'"
        )
    local_text = match.group("local").replace(",", ".")
    fraction = match.group("fraction")
    if fraction and len(fraction) > 7:  # python keeps microseconds; drop the nanoseconds
        local_text = local_text[: len(local_text) - len(fraction) + 7]
    try:
        local = dt.datetime.fromisoformat(local_text)
    except ValueError as error:
        raise TimerError(f"Invalid date-time '{_shown(text)}': {error}") from None
    offset_text, zone_text = match.group("offset"), match.group("zone")
    if offset_text is None and zone_text is None:
        raise TimerError(
            f"Invalid date-time '{_shown(text)}': it has no offset or zone (write e.g. "
            f"'{_shown(text)}Z' for UTC)"
        )
    if offset_text is not None:
        if offset_text.upper() == "Z":
            tzinfo: dt.tzinfo = dt.UTC
        else:
            digits = offset_text[1:].replace(":", "")
            hours, minutes, seconds = int(digits[:2]), int(digits[2:4]), int(digits[4:6] or 0)
            if hours > 18 or minutes > 59 or seconds > 59:
                raise TimerError(f"Invalid date-time '{_shown(text)}': offset out of range")
            delta = dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
            tzinfo = dt.timezone(-delta if offset_text[0] == "-" else delta)
        # With both an offset and a zone, java.time keeps the offset when it is valid for the
        # zone; the instant is the local time at that offset either way.
        return local.replace(tzinfo=tzinfo)
    assert zone_text is not None
    try:
        zone = ZoneInfo(zone_text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimerError(f"Invalid date-time '{_shown(text)}': unknown time zone '{zone_text}'") from None
    return local.replace(tzinfo=zone)


def _epoch_ms(value: dt.datetime) -> int:
    try:
        due = (value - _EPOCH) // dt.timedelta(milliseconds=1)
    except OverflowError:  # pragma: no cover - years are 1..9999
        raise TimerError(_OVERFLOW) from None
    if not MIN_EPOCH_MS <= due <= MAX_EPOCH_MS:
        raise TimerError(_OVERFLOW)
    return due


def parse_date(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 date-time with an offset (`Z`, `+01:00`) or a zone
    (`[Europe/Berlin]`); raises `TimerError` otherwise."""
    text = _check_text(text, "date-time")
    return _epoch_ms(_parse_date_time(text))


# --- cron ------------------------------------------------------------------------------------------

_CRON_MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_MONTH_NAMES = {name: index for index, name in enumerate(calendar.month_abbr) if name}
_MONTH_NAMES = {name.upper(): index for name, index in _MONTH_NAMES.items()}
# Spring: 0 and 7 are Sunday; MON=1 ... SUN=7 (java DayOfWeek).
_DAY_NAMES = {"MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6, "SUN": 7}
_FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _cron_error(text: str, reason: str) -> TimerError:
    return TimerError(f"Invalid cron expression '{_shown(text)}': {reason}")


def _cron_value(token: str, field_index: int, text: str) -> int:
    names = _MONTH_NAMES if field_index == 4 else _DAY_NAMES if field_index == 5 else {}
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit() or len(token) > 4:
        raise _cron_error(text, f"'{token}' is not a valid {_FIELD_NAMES[field_index]} value")
    value = int(token)
    low, high = _FIELD_RANGES[field_index]
    if not low <= value <= high:
        raise _cron_error(text, f"{_FIELD_NAMES[field_index]} value {value} is not in {low}-{high}")
    return value


def _cron_set(field: str, field_index: int, text: str) -> frozenset[int]:
    low, high = _FIELD_RANGES[field_index]
    values: set[int] = set()
    for part in field.split(","):
        if not part:
            raise _cron_error(text, f"empty list item in the {_FIELD_NAMES[field_index]} field")
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or not 0 < int(step_text) <= high + 1:
                raise _cron_error(
                    text, f"invalid step '{step_text}' in the {_FIELD_NAMES[field_index]} field"
                )
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, _, last = part.partition("-")
            start, end = _cron_value(first, field_index, text), _cron_value(last, field_index, text)
            if start > end:
                raise _cron_error(text, f"range '{part}' runs backwards")
        else:
            start = _cron_value(part, field_index, text)
            end = high if step != 1 else start
        values.update(range(start, end + 1, step))
    if field_index == 5 and 0 in values:  # Sunday is both 0 and 7; keep java's 1..7
        values.discard(0)
        values.add(7)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class _DayRule:
    """A day-of-month or day-of-week field with Quartz/Spring specials (L, W, #)."""

    values: frozenset[int] | None = None  # plain set; None means special below
    last_day_offset: int | None = None  # day-of-month `L` / `L-3`
    nearest_weekday: int | None = None  # day-of-month `15W`
    last_weekday_of_month: bool = False  # day-of-month `LW`
    last_day_of_week: int | None = None  # day-of-week `5L` (last Friday)
    nth_day_of_week: tuple[int, int] | None = None  # day-of-week `MON#2`

    def matches_day_of_month(self, day: dt.date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        if self.values is not None:
            return day.day in self.values
        if self.last_day_offset is not None:
            return day.day == max(1, last - self.last_day_offset)
        if self.last_weekday_of_month:
            target = dt.date(day.year, day.month, last)
            while target.weekday() >= 5:
                target -= dt.timedelta(days=1)
            return day == target
        assert self.nearest_weekday is not None
        wanted = min(self.nearest_weekday, last)
        target = dt.date(day.year, day.month, wanted)
        if target.weekday() == 5:  # Saturday: Friday, unless that leaves the month
            target = target - dt.timedelta(days=1) if wanted > 1 else target + dt.timedelta(days=2)
        elif target.weekday() == 6:  # Sunday: Monday, unless that leaves the month
            target = target + dt.timedelta(days=1) if wanted < last else target - dt.timedelta(days=2)
        return day == target

    def matches_day_of_week(self, day: dt.date) -> bool:
        weekday = day.isoweekday()
        if self.values is not None:
            return weekday in self.values
        if self.last_day_of_week is not None:
            last = calendar.monthrange(day.year, day.month)[1]
            return weekday == self.last_day_of_week and day.day > last - 7
        assert self.nth_day_of_week is not None
        wanted_day, nth = self.nth_day_of_week
        return weekday == wanted_day and (day.day - 1) // 7 + 1 == nth


def _day_of_month_rule(field: str, text: str) -> _DayRule:
    upper = field.upper()
    if upper == "LW":
        return _DayRule(last_weekday_of_month=True)
    if upper.startswith("L"):
        offset_text = upper[1:]
        if offset_text == "":
            return _DayRule(last_day_offset=0)
        if offset_text.startswith("-") and offset_text[1:].isdigit() and int(offset_text[1:]) <= 30:
            return _DayRule(last_day_offset=int(offset_text[1:]))
        raise _cron_error(text, f"invalid day-of-month '{field}'")
    if upper.endswith("W"):
        day = _cron_value(upper[:-1], 3, text)
        return _DayRule(nearest_weekday=day)
    return _DayRule(values=_cron_set(field, 3, text))


def _day_of_week_rule(field: str, text: str) -> _DayRule:
    upper = field.upper()
    if "#" in upper:
        day_text, _, nth_text = upper.partition("#")
        day = _cron_value(day_text, 5, text) or 7
        if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise _cron_error(text, f"invalid day-of-week '{field}' (the week must be 1-5)")
        return _DayRule(nth_day_of_week=(day, int(nth_text)))
    if upper.endswith("L") and len(upper) > 1:
        day = _cron_value(upper[:-1], 5, text) or 7
        return _DayRule(last_day_of_week=day)
    return _DayRule(values=_cron_set(field, 5, text))


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A Spring 6-field cron expression: second minute hour day-of-month month day-of-week.

    As in Spring's CronExpression (used by Zeebe's CronTimer), day-of-month and day-of-week
    must both match (`?` and `*` match everything); names (JAN, MON) and `L`, `W`, `#`
    are understood. Evaluated in UTC.
    """

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    day_of_month: _DayRule
    day_of_week: _DayRule

    def next_after(self, after_ms: int) -> int | None:
        """The first matching instant strictly after `after_ms`, or None if none in ~29 years."""
        start = _EPOCH + dt.timedelta(milliseconds=after_ms)
        start = start.replace(microsecond=0) + dt.timedelta(seconds=1)
        day = start.date()
        for _ in range(CRON_SEARCH_DAYS):
            if (
                day.month in self.months
                and self.day_of_month.matches_day_of_month(day)
                and self.day_of_week.matches_day_of_week(day)
            ):
                floor = start.time() if day == start.date() else dt.time(0, 0, 0)
                found = self._first_time_of_day(floor)
                if found is not None:
                    moment = dt.datetime.combine(day, found, tzinfo=dt.UTC)
                    due = (moment - _EPOCH) // dt.timedelta(milliseconds=1)
                    return due if due <= MAX_EPOCH_MS else None
            if day.year == 9999 and day.month == 12 and day.day == 31:
                return None
            day += dt.timedelta(days=1)
        return None

    def _first_time_of_day(self, floor: dt.time) -> dt.time | None:
        for hour in sorted(self.hours):
            if hour < floor.hour:
                continue
            for minute in sorted(self.minutes):
                if hour == floor.hour and minute < floor.minute:
                    continue
                for second in sorted(self.seconds):
                    if hour == floor.hour and minute == floor.minute and second < floor.second:
                        continue
                    return dt.time(hour, minute, second)
        return None


def parse_cron(text: str) -> CronExpression:
    """Parse a Spring 6-field cron expression or a macro (`@daily`, `@hourly`, ...)."""
    text = _check_text(text, "cron expression")
    expanded = _CRON_MACROS.get(text.lower(), text)
    fields = expanded.split()
    if len(fields) != 6:
        raise _cron_error(
            text,
            f"expected 6 fields (second minute hour day-of-month month day-of-week), found {len(fields)}",
        )
    second, minute, hour, day_of_month, month, day_of_week = fields
    expression = CronExpression(
        text=text,
        seconds=_cron_set(second, 0, text),
        minutes=_cron_set(minute, 1, text),
        hours=_cron_set(hour, 2, text),
        months=_cron_set(month, 4, text),
        day_of_month=_day_of_month_rule(day_of_month, text),
        day_of_week=_day_of_week_rule(day_of_week, text),
    )
    return expression


# --- cycles ---------------------------------------------------------------------------------------

_REPETITIONS_RE = re.compile(r"R(?P<count>\d*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Cycle:
    """A `timeCycle`: a repeating interval, or a cron expression (which repeats forever).

    `repetitions` is None for "forever" (`R/...` and cron; Zeebe writes -1 in the TIMER
    record: `zeebe_repetitions`). `start_ms` is the explicit start of `R3/<start>/<interval>`.
    """

    text: str
    repetitions: int | None
    interval: Interval | None = None
    cron: CronExpression | None = None
    start_ms: int | None = None

    @property
    def interval_ms(self) -> int | None:
        """The fixed length of the interval; None for cron and calendar-based intervals
        (months vary: use `next_due`)."""
        if self.interval is None or self.interval.is_calendar_based:
            return None
        return self.interval.days * 86_400_000 + self.interval.milliseconds

    @property
    def zeebe_repetitions(self) -> int:
        return -1 if self.repetitions is None else self.repetitions

    def next_due(self, after_ms: int) -> int | None:
        """When the cycle next fires after `after_ms` (a start, or the last firing).

        A future explicit start is the first due date; otherwise `after_ms` plus the interval,
        or the next cron match (None when the cron expression never matches again).
        """
        if self.cron is not None:
            return self.cron.next_after(after_ms)
        assert self.interval is not None
        if self.start_ms is not None and self.start_ms > after_ms:
            return self.start_ms
        return self.interval.add_to(after_ms)

    def next_repetition(self) -> Cycle:
        """The cycle after one firing: one repetition fewer, the explicit start used up."""
        repetitions = None if self.repetitions is None else max(0, self.repetitions - 1)
        return replace(self, repetitions=repetitions, start_ms=None)


def parse_cycle(text: str) -> Cycle:
    """Parse `R5/PT10S`, `R/P1D`, `R3/<date-time>/PT1H` or a cron expression."""
    text = _check_text(text, "time cycle")
    if text[:1].upper() != "R":
        return Cycle(text=text, repetitions=None, cron=parse_cron(text))
    # A zone name has slashes too (R/2022-01-01T10:00:00+02:00[Europe/Berlin]/P1D): the
    # repetitions end at the first slash, the interval starts after the last one.
    parts = text.split("/")
    if len(parts) > 3:
        parts = [parts[0], "/".join(parts[1:-1]), parts[-1]]
    repetitions_match = _REPETITIONS_RE.fullmatch(parts[0])
    if repetitions_match is None or len(parts) not in (2, 3):
        raise TimerError(
            f"Invalid time cycle '{_shown(text)}': expected 'R<n>/<duration>' or "
            "'R<n>/<start date-time>/<duration>' (e.g. 'R5/PT10S', 'R/P1D'), or a cron expression"
        )
    count_text = repetitions_match.group("count")
    repetitions: int | None = None
    if count_text:
        if len(count_text) > 10 or int(count_text) > MAX_REPETITIONS:
            raise TimerError(
                f"Invalid time cycle '{_shown(text)}': at most {MAX_REPETITIONS} repetitions are allowed"
            )
        repetitions = int(count_text)
    try:
        start_ms = parse_date(parts[1]) if len(parts) == 3 else None
        interval = parse_interval(parts[-1])
    except TimerError as error:
        raise TimerError(f"Invalid time cycle '{_shown(text)}': {error}") from None
    if interval.months == 0 and interval.days == 0 and interval.milliseconds <= 0:
        raise TimerError(
            f"Invalid time cycle '{_shown(text)}': the interval must be longer than zero "
            "(a zero interval would fire without pause)"
        )
    return Cycle(text=text, repetitions=repetitions, interval=interval, start_ms=start_ms)


# --- deploy-time checks and run-time due dates ------------------------------------------------

#: The word Zeebe uses for each timer kind in "Invalid timer <kind> expression (...)".
_KIND_WORDS = {"timeDuration": "duration", "timeDate": "date", "timeCycle": "cycle"}


def check_timer_text(kind: str, text: str) -> str | None:
    """Zeebe's deploy-time check of a static timer value (TimerCatchEventExpressionValidator):
    None when usable, else `Invalid timer <duration|date|cycle> expression (<reason>)`."""
    try:
        if kind == "timeDuration":
            parse_duration(text)
        elif kind == "timeDate":
            parse_date(text)
        elif kind == "timeCycle":
            cycle = parse_cycle(text)
            if cycle.next_due(_now_ms()) is None:
                raise TimerError(f"The cron expression '{_shown(cycle.text)}' never matches")
        else:
            raise TimerError(f"unknown timer kind '{kind}'")
    except TimerError as error:
        return f"Invalid timer {_KIND_WORDS.get(kind, kind)} expression ({error})"
    return None


def due_date(kind: str, value: object, *, now_ms: int) -> tuple[int, Cycle | None]:
    """(due epoch ms, cycle or None) of an evaluated timer value.

    `value` is the static text or a FEEL result: a string, or for FEEL temporal values a
    `datetime` (timeDate) or `timedelta` (timeDuration). A duration due in the past (zero or
    negative from FEEL) is due now, as in Zeebe. Raises `TimerError`.
    """
    if kind == "timeDuration":
        if isinstance(value, dt.timedelta):
            due = now_ms + value // dt.timedelta(milliseconds=1)
            if due > MAX_EPOCH_MS:
                raise TimerError(_OVERFLOW)
            return max(due, now_ms), None
        return max(parse_interval(_text(value, "duration"), allow_negative=True).add_to(now_ms), now_ms), None
    if kind == "timeDate":
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                raise TimerError(f"Invalid date-time '{value.isoformat()}': it has no offset or zone")
            return _epoch_ms(value), None
        return parse_date(_text(value, "date-time")), None
    if kind == "timeCycle":
        cycle = parse_cycle(_text(value, "time cycle"))
        next_due = cycle.next_due(now_ms)
        if next_due is None:
            raise TimerError(f"The cron expression '{_shown(cycle.text)}' never matches again")
        return next_due, cycle
    raise TimerError(f"unknown timer kind '{kind}'")


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    raise TimerError(f"Expected the {what} to be a string, but found '{type(value).__name__}'")
