"""engine.bpmn.timers: ISO 8601 durations, date-times, cycles and Spring cron, and hostile input.

Due dates are computed from fixed instants, never from the clock, except where a function's
contract is "from now" (then only the length of the result is asserted).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bpmn import timers
from engine.bpmn.timers import TimerError


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp() * 1000)


NOW = ms(2026, 12, 2, 10, 0, 0)  # a Wednesday
SECOND, MINUTE, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15S", 15 * SECOND),
        ("PT0.5S", 500),
        ("PT0,25S", 250),
        ("PT1.000000001S", SECOND),  # below a millisecond is dropped, as Zeebe's toEpochMilli
        ("P1DT2H", DAY + 2 * HOUR),
        ("P14DT1H30M", 14 * DAY + HOUR + 30 * MINUTE),
        ("P2W", 14 * DAY),
        ("PT90M", 90 * MINUTE),
        ("PT0S", 0),
        ("pt1m", MINUTE),  # java.time parses case-insensitively
        ("  PT1M\n", MINUTE),  # element text is trimmed
        ("P1M", 31 * DAY),  # from 2 Dec: to 2 Jan
        ("P1Y", 365 * DAY),
    ],
)
def test_durations(text: str, expected: int) -> None:
    assert timers.parse_duration(text, from_ms=NOW) == expected


def test_calendar_months_clamp_to_the_end_of_the_month() -> None:
    assert timers.parse_interval("P1M").add_to(ms(2027, 1, 31)) == ms(2027, 2, 28)
    assert timers.parse_interval("P1M").add_to(ms(2028, 1, 31)) == ms(2028, 2, 29)
    assert timers.parse_interval("P1Y").add_to(ms(2028, 2, 29)) == ms(2029, 2, 28)
    interval = timers.parse_interval("P1Y2M3DT4H")
    assert (interval.months, interval.days, interval.milliseconds, interval.is_calendar_based) == (
        14,
        3,
        4 * HOUR,
        True,
    )


def test_parse_duration_defaults_to_now() -> None:
    assert timers.parse_duration("PT1H") == HOUR


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-PT5S", "must not be negative"),
        ("PT-5S", "must not be negative"),
        ("P-1D", "must not be negative"),
        ("P", "expected an ISO 8601 duration"),
        ("PT", "expected an ISO 8601 duration"),
        ("P1DT", "'T' must be followed by hours, minutes or seconds"),
        ("P1.5D", "expected an ISO 8601 duration"),
        ("PT1.5H", "expected an ISO 8601 duration"),
        ("1 hour", "expected an ISO 8601 duration"),
        ("PT1S PT1S", "expected an ISO 8601 duration"),
        ("", "the value is empty"),
        ("   ", "the value is empty"),
        ("PT1M1H", "expected an ISO 8601 duration"),  # wrong order
        ("P1S", "expected an ISO 8601 duration"),  # seconds need the T
    ],
)
def test_invalid_durations(text: str, reason: str) -> None:
    with pytest.raises(TimerError, match=reason):
        timers.parse_duration(text, from_ms=NOW)


def test_negative_duration_allowed_where_asked() -> None:
    assert timers.parse_interval("-PT5S", allow_negative=True).add_to(NOW) == NOW - 5 * SECOND


@pytest.mark.parametrize(
    "text",
    [
        "PT999999999999999999S",  # 18 digits of seconds: ~3e10 years
        "P99999999Y",
        "P999999999999999999D",
        "P9000Y",  # past year 9999 from 2026
        "PT99999999999999H",
    ],
)
def test_absurd_durations_overflow(text: str) -> None:
    with pytest.raises(TimerError, match="Timer duration is too large and results in arithmetic overflow"):
        timers.parse_duration(text, from_ms=NOW)


def test_numbers_longer_than_a_long_are_not_durations() -> None:
    with pytest.raises(TimerError, match="expected an ISO 8601 duration"):
        timers.parse_duration("PT" + "9" * 40 + "S")


def test_ten_thousand_characters_are_refused_quickly() -> None:
    for text in ("P" + "1" * 10_000 + "D", "PT1S" * 2500, "R" * 10_000, "x" * 10_000):
        with pytest.raises(TimerError, match="longer than the limit of 256"):
            timers.parse_duration(text)
        with pytest.raises(TimerError, match="longer than the limit of 256"):
            timers.parse_cycle(text)
        with pytest.raises(TimerError, match="longer than the limit of 256"):
            timers.parse_date(text)


def test_non_strings_are_refused() -> None:
    for value in (None, 5, ["PT1S"], b"PT1S"):
        with pytest.raises(TimerError, match="as a string"):
            timers.parse_duration(value)  # type: ignore[arg-type]


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T10:00:00Z",
        "2026-12-02T10:00:00z",
        "2026-12-02T10:00Z",
        "2026-12-02T11:00:00+01:00",
        "2026-12-02T05:00:00-05:00",
        "2026-12-02T11:00:00+0100",
        "2026-12-02T11:00:00[Europe/Berlin]",
        "2026-12-02T11:00:00+01:00[Europe/Berlin]",
        "2026-12-02T10:00:00.000Z",
        "2026-12-02T10:00:00.000000000Z",
    ],
)
def test_dates(text: str) -> None:
    assert timers.parse_date(text) == NOW


def test_zone_uses_its_daylight_saving_offset() -> None:
    # Berlin is UTC+2 in July
    assert timers.parse_date("2026-07-01T12:00:00[Europe/Berlin]") == ms(2026, 7, 1, 10)


def test_fractions_of_a_second_are_kept_to_the_millisecond() -> None:
    assert timers.parse_date("2026-12-02T10:00:00.123456789Z") == NOW + 123


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-02T10:00:00", "it has no offset or zone"),
        ("2026-12-02", "expected an ISO 8601 date-time"),
        ("2026-13-02T10:00:00Z", "month must be in 1..12"),
        ("2026-02-30T10:00:00Z", "day is out of range"),
        ("2026-12-02T25:00:00Z", "hour must be in 0..23"),
        ("2026-12-02T10:00:00+19:00", "offset out of range"),
        ("2026-12-02T10:00:00[Mars/Olympus_Mons]", "unknown time zone 'Mars/Olympus_Mons'"),
        ("2026-12-02T10:00:00[../../etc/passwd]", "expected an ISO 8601 date-time"),
        ("tomorrow", "expected an ISO 8601 date-time"),
        ("+999999999-12-02T10:00:00Z", "expected an ISO 8601 date-time"),
    ],
)
def test_invalid_dates(text: str, reason: str) -> None:
    with pytest.raises(TimerError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        timers.parse_date(text)


# --- cycles ---------------------------------------------------------------------------------------


def test_repeating_interval() -> None:
    cycle = timers.parse_cycle("R5/PT10S")
    assert (cycle.repetitions, cycle.zeebe_repetitions, cycle.interval_ms, cycle.start_ms, cycle.cron) == (
        5,
        5,
        10 * SECOND,
        None,
        None,
    )
    assert cycle.next_due(NOW) == NOW + 10 * SECOND
    after = cycle.next_repetition()
    assert (after.repetitions, after.interval_ms) == (4, 10 * SECOND)
    assert timers.parse_cycle("R0/PT1S").next_repetition().repetitions == 0


def test_infinite_cycle() -> None:
    cycle = timers.parse_cycle("R/PT1M")
    assert (cycle.repetitions, cycle.zeebe_repetitions) == (None, -1)
    assert cycle.next_due(NOW) == NOW + MINUTE
    assert cycle.next_repetition().repetitions is None


def test_cycle_with_a_start() -> None:
    cycle = timers.parse_cycle("R3/2026-12-03T00:00:00Z/PT1H")
    assert cycle.start_ms == ms(2026, 12, 3)
    assert cycle.next_due(NOW) == ms(2026, 12, 3)  # a future start is the first due date
    assert cycle.next_due(ms(2026, 12, 3)) == ms(2026, 12, 3, 1)
    assert cycle.next_repetition().start_ms is None
    zoned = timers.parse_cycle("R/2022-01-01T10:00:00+02:00[Europe/Berlin]/P1D")
    assert zoned.start_ms == ms(2022, 1, 1, 8)
    assert zoned.interval is not None and zoned.interval_ms == DAY


def test_calendar_cycle_has_no_fixed_length() -> None:
    cycle = timers.parse_cycle("R/P1M")
    assert cycle.interval_ms is None
    assert cycle.next_due(ms(2027, 1, 31)) == ms(2027, 2, 28)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("R99999999999/PT1S", "at most 2147483647 repetitions"),
        ("R2147483648/PT1S", "at most 2147483647 repetitions"),
        ("R" + "9" * 200 + "/PT1S", "at most 2147483647 repetitions"),
        ("R/PT0S", "the interval must be longer than zero"),
        ("R5/-PT1S", "must not be negative"),
        ("R5/", "the value is empty"),
        ("R5", "expected 'R<n>/<duration>'"),
        ("R-1/PT1S", "expected 'R<n>/<duration>'"),
        ("Rx/PT1S", "expected 'R<n>/<duration>'"),
        ("R5/PT1S/PT1S/PT1S", "Invalid time cycle 'R5/PT1S/PT1S/PT1S': Invalid date-time 'PT1S/PT1S'"),
        ("R5/2026-12-03/PT1S", "Invalid time cycle 'R5/2026-12-03/PT1S': Invalid date-time"),
        ("R5/2026-12-03T00:00:00Z/P", "Invalid time cycle"),
    ],
)
def test_invalid_cycles(text: str, reason: str) -> None:
    with pytest.raises(TimerError, match=reason.replace("(", r"\(")):
        timers.parse_cycle(text)


def test_largest_repetition_count_is_accepted() -> None:
    assert timers.parse_cycle("R2147483647/PT1S").repetitions == 2**31 - 1


# --- cron ------------------------------------------------------------------------------------------


def next_cron(text: str, after: int = NOW) -> dt.datetime | None:
    due = timers.parse_cycle(text).next_due(after)
    return None if due is None else dt.datetime.fromtimestamp(due / 1000, dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 0 9-17 * * MON-FRI", dt.datetime(2026, 12, 2, 11)),  # 10:00:00 itself is excluded
        ("0 0 9-17 * * mon-fri", dt.datetime(2026, 12, 2, 11)),
        ("0 */15 * * * *", dt.datetime(2026, 12, 2, 10, 15)),
        ("*/10 * * * * *", dt.datetime(2026, 12, 2, 10, 0, 10)),
        ("30 5 10 * * *", dt.datetime(2026, 12, 2, 10, 5, 30)),
        ("0 0 8 * * *", dt.datetime(2026, 12, 3, 8)),
        ("0 0 0 1 1 *", dt.datetime(2027, 1, 1)),
        ("0 0 0 1 JAN ?", dt.datetime(2027, 1, 1)),
        ("0 0 12 * * SAT,SUN", dt.datetime(2026, 12, 5, 12)),
        ("0 0 12 * * 0", dt.datetime(2026, 12, 6, 12)),  # 0 is Sunday
        ("0 0 12 * * 7", dt.datetime(2026, 12, 6, 12)),  # and so is 7
        ("0 0 0 L * *", dt.datetime(2026, 12, 31)),
        ("0 0 0 L-1 * *", dt.datetime(2026, 12, 30)),
        ("0 0 0 LW * *", dt.datetime(2026, 12, 31)),  # a Thursday
        ("0 0 0 15W * *", dt.datetime(2026, 12, 15)),  # a Tuesday
        ("0 0 0 19W * *", dt.datetime(2026, 12, 18)),  # Saturday -> Friday
        ("0 0 12 ? * MON#2", dt.datetime(2026, 12, 14, 12)),
        ("0 0 12 ? * 5L", dt.datetime(2026, 12, 25, 12)),  # last Friday
        ("0 0 0 29 2 *", dt.datetime(2028, 2, 29)),
        ("0 0 0 13 * FRI", dt.datetime(2027, 8, 13)),  # day-of-month AND day-of-week (Spring)
        ("@daily", dt.datetime(2026, 12, 3)),
        ("@midnight", dt.datetime(2026, 12, 3)),
        ("@hourly", dt.datetime(2026, 12, 2, 11)),
        ("@weekly", dt.datetime(2026, 12, 6)),
        ("@monthly", dt.datetime(2027, 1, 1)),
        ("@yearly", dt.datetime(2027, 1, 1)),
        ("@annually", dt.datetime(2027, 1, 1)),
    ],
)
def test_cron(text: str, expected: dt.datetime) -> None:
    cycle = timers.parse_cycle(text)
    assert cycle.cron is not None and (cycle.repetitions, cycle.zeebe_repetitions) == (None, -1)
    assert next_cron(text) == expected


def test_cron_never_matching_gives_none_and_is_refused_at_deploy() -> None:
    assert next_cron("0 0 0 30 2 *") is None
    assert next_cron("0 0 0 31 4 *") is None
    assert timers.check_timer_text("timeCycle", "0 0 0 30 2 *") == (
        "Invalid timer cycle expression (The cron expression '0 0 0 30 2 *' never matches)"
    )


def test_cron_repeats_after_each_firing() -> None:
    cycle = timers.parse_cycle("0 0 * * * *")
    first = cycle.next_due(NOW)
    assert first == NOW + HOUR
    assert first is not None and cycle.next_due(first) == NOW + 2 * HOUR


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0 0 * *", "expected 6 fields"),
        ("0 0 * * * * *", "expected 6 fields"),
        ("* * * * *", "expected 6 fields"),  # unix 5-field cron is not Spring's
        ("0 0 25 * * *", "hour value 25 is not in 0-23"),
        ("60 * * * * *", "second value 60 is not in 0-59"),
        ("0 0 0 32 * *", "day-of-month value 32 is not in 1-31"),
        ("0 0 0 * 13 *", "month value 13 is not in 1-12"),
        ("0 0 0 * * 8", "day-of-week value 8 is not in 0-7"),
        ("0 0 0 * * FOO", "'FOO' is not a valid day-of-week value"),
        ("0 0 10-5 * * *", "range '10-5' runs backwards"),
        ("*/0 * * * * *", "invalid step '0'"),
        ("*/x * * * * *", "invalid step 'x'"),
        ("0,,1 * * * * *", "empty list item"),
        ("0 0 0 L-99 * *", "invalid day-of-month 'L-99'"),
        ("0 0 0 ? * MON#6", "the week must be 1-5"),
        ("@fortnightly", "expected 6 fields"),
        ("0 0 " + "1," * 200 + "1 * * *", "longer than the limit"),
    ],
)
def test_invalid_cron(text: str, reason: str) -> None:
    with pytest.raises(TimerError, match=reason.replace("(", r"\(").replace("?", r"\?").replace("*", r"\*")):
        timers.parse_cycle(text)


# --- deploy-time check and run-time due dates ----------------------------------------------------


def test_check_timer_text_uses_zeebes_wording() -> None:
    assert timers.check_timer_text("timeDuration", "PT1M") is None
    assert timers.check_timer_text("timeDate", "2026-12-02T10:00:00Z") is None
    assert timers.check_timer_text("timeCycle", "R/P1D") is None
    assert timers.check_timer_text("timeDuration", "soon") == (
        "Invalid timer duration expression (Invalid duration 'soon': expected an ISO 8601 duration such as "
        "'PT15S', 'P1DT2H' or 'P1Y2M')"
    )
    assert (timers.check_timer_text("timeDate", "now") or "").startswith("Invalid timer date expression (")
    assert (timers.check_timer_text("timeCycle", "R/x") or "").startswith("Invalid timer cycle expression (")


def test_due_dates_from_static_text_and_feel_values() -> None:
    assert timers.due_date("timeDuration", "PT10S", now_ms=NOW) == (NOW + 10 * SECOND, None)
    assert timers.due_date("timeDuration", dt.timedelta(minutes=1), now_ms=NOW) == (NOW + MINUTE, None)
    # a FEEL duration that is zero or negative (a deadline already passed) is due now
    assert timers.due_date("timeDuration", "-PT10S", now_ms=NOW) == (NOW, None)
    assert timers.due_date("timeDuration", dt.timedelta(seconds=-5), now_ms=NOW) == (NOW, None)
    assert timers.due_date("timeDate", "2026-12-02T11:00:00+01:00", now_ms=0) == (NOW, None)
    aware = dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)
    assert timers.due_date("timeDate", aware, now_ms=0) == (NOW, None)
    due, cycle = timers.due_date("timeCycle", "R2/PT1H", now_ms=NOW)
    assert due == NOW + HOUR and cycle is not None and cycle.repetitions == 2


def test_due_date_refuses_wrong_types() -> None:
    with pytest.raises(TimerError, match="Expected the duration to be a string, but found 'int'"):
        timers.due_date("timeDuration", 10, now_ms=NOW)
    with pytest.raises(TimerError, match="it has no offset or zone"):
        timers.due_date("timeDate", dt.datetime(2026, 12, 2), now_ms=NOW)
    with pytest.raises(TimerError, match="Timer duration is too large"):
        timers.due_date("timeDuration", dt.timedelta(days=999_999_999), now_ms=NOW)
    with pytest.raises(TimerError, match="never matches again"):
        timers.due_date("timeCycle", "0 0 0 30 2 *", now_ms=NOW)
    with pytest.raises(TimerError, match="unknown timer kind"):
        timers.due_date("timeSoon", "PT1S", now_ms=NOW)


# --- no input crashes the parsers -------------------------------------------------------------------

TIMER_ALPHABET = "PTRYMWDHS0123456789.,:-+/Z[]_ *?#LW@abcdefghijklmnopqrstuvwxyzEurope/Berlin"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=TIMER_ALPHABET, max_size=80))
def test_arbitrary_text_is_a_timer_or_a_timer_error(text: str) -> None:
    for parse in (timers.parse_duration, timers.parse_date, timers.parse_cycle):
        try:
            parse(text)
        except TimerError as error:
            assert str(error)
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        result = timers.check_timer_text(kind, text)
        assert result is None or result.startswith("Invalid timer ")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=999),
)
def test_durations_add_up(days: int, hours: int, minutes: int, millis: int) -> None:
    text = f"P{days}DT{hours}H{minutes}M{millis / 1000:.3f}S"
    assert timers.parse_duration(text, from_ms=NOW) == days * DAY + hours * HOUR + minutes * MINUTE + millis
