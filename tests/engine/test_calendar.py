"""Tests for engine.calendar: business days, deadlines, Helsinki time, offsets and formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import (
    HELSINKI,
    Offset,
    add_business_days,
    deadline_instant,
    effective_deadline,
    end_of_day_utc,
    format_date,
    format_datetime,
    holiday_name,
    is_business_day,
    local_date,
    local_time_utc,
    next_business_day,
    parse_offset,
    previous_business_day,
    relative_instant,
    reminder_instant,
    shift_out_of_quiet_hour,
)

D = date


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Build an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# Finnish holidays 2026-2027 (holidays.Finland default category), from the shared data file.
HOLIDAYS_2026_2027 = [
    date.fromisoformat(text)
    for text in """
    2026-01-01 2026-01-06 2026-04-03 2026-04-05 2026-04-06 2026-05-01 2026-05-14 2026-05-24
    2026-06-19 2026-06-20 2026-10-31 2026-12-06 2026-12-24 2026-12-25 2026-12-26
    2027-01-01 2027-01-06 2027-03-26 2027-03-28 2027-03-29 2027-05-01 2027-05-06 2027-05-16
    2027-06-25 2027-06-26 2027-11-06 2027-12-06 2027-12-24 2027-12-25 2027-12-26
    """.split()
]

# fmt: off
INVALID_OFFSETS = [
    "", " ", "P", "PT", "-P", "P1Y", "P1M", "-P1M", "P1Y2D", "P1.5D", "PT0.5S", "PT1,5H", "7D",
    "P7", "P-7D", "--P7D", "+-P1D", "P1W2D", "p7d", " P7D", "P7D ", "PT1H2D", "P1DT", "P1H",
    "P1D2D", "PT1S1M", "P7D\n", "fourteen days", "P\uff11D",
]
# fmt: on

dates = st.dates(min_value=D(2000, 1, 1), max_value=D(2099, 12, 31))
wall_times = st.times()
instants = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
)


# --- business days ---------------------------------------------------------------------------------


@pytest.mark.parametrize("d", HOLIDAYS_2026_2027)
def test_holidays_are_not_business_days(d: date) -> None:
    assert not is_business_day(d)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2026, 3, 27), True),  # Friday
        (D(2026, 3, 28), False),  # Saturday
        (D(2026, 3, 29), False),  # Sunday
        (D(2026, 3, 30), True),  # Monday
        (D(2026, 6, 18), True),  # Thursday before Midsummer Eve
        (D(2026, 12, 23), True),
        (D(2026, 12, 28), True),
        (D(2027, 12, 31), True),  # New Year's Eve is a weekday, not a holiday
    ],
)
def test_is_business_day(d: date, expected: bool) -> None:
    assert is_business_day(d) is expected


def test_is_business_day_rejects_datetime() -> None:
    with pytest.raises(TypeError):
        is_business_day(datetime(2026, 3, 2, 12, 0))


@pytest.mark.parametrize(
    ("d", "nxt", "prev"),
    [
        (D(2026, 3, 2), D(2026, 3, 2), D(2026, 3, 2)),
        (D(2026, 3, 28), D(2026, 3, 30), D(2026, 3, 27)),
        (D(2026, 4, 3), D(2026, 4, 7), D(2026, 4, 2)),  # Easter
        (D(2026, 6, 19), D(2026, 6, 22), D(2026, 6, 18)),  # Midsummer
        (D(2026, 12, 24), D(2026, 12, 28), D(2026, 12, 23)),  # Christmas
        (D(2027, 1, 1), D(2027, 1, 4), D(2026, 12, 31)),
    ],
)
def test_next_and_previous_business_day(d: date, nxt: date, prev: date) -> None:
    assert next_business_day(d) == nxt
    assert previous_business_day(d) == prev


@pytest.mark.parametrize(
    ("d", "n", "expected"),
    [
        (D(2026, 3, 2), 0, D(2026, 3, 2)),
        (D(2026, 3, 2), 1, D(2026, 3, 3)),
        (D(2026, 3, 27), 1, D(2026, 3, 30)),  # over a weekend
        (D(2026, 3, 28), 1, D(2026, 3, 30)),  # start on Saturday, not counted
        (D(2026, 12, 23), 1, D(2026, 12, 28)),
        (D(2026, 12, 28), -3, D(2026, 12, 21)),
        (D(2026, 4, 7), -1, D(2026, 4, 2)),  # back over Easter
        (D(2026, 6, 1), 10, D(2026, 6, 15)),
        (D(2026, 6, 15), -10, D(2026, 6, 1)),
    ],
)
def test_add_business_days(d: date, n: int, expected: date) -> None:
    assert add_business_days(d, n) == expected


# --- deadlines -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "effective"),
    [
        (D(2026, 6, 19), D(2026, 6, 22)),  # Midsummer Eve (Fri) -> Monday
        (D(2026, 12, 24), D(2026, 12, 28)),  # Christmas Eve (Thu) -> Monday
        (D(2026, 3, 28), D(2026, 3, 30)),  # Saturday before the spring DST change
        (D(2026, 5, 1), D(2026, 5, 4)),  # May Day (Fri)
        (D(2026, 12, 6), D(2026, 12, 7)),  # Independence Day (Sun)
        (D(2027, 12, 6), D(2027, 12, 7)),  # Independence Day (Mon)
        (D(2027, 3, 26), D(2027, 3, 30)),  # Good Friday -> Tuesday after Easter
        (D(2026, 3, 2), D(2026, 3, 2)),  # an ordinary Monday stays
    ],
)
def test_effective_deadline(deadline: date, effective: date) -> None:
    assert effective_deadline(deadline) == effective


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D(2026, 3, 28), utc(2026, 3, 28, 21, 59, 59)),  # EET +02
        (D(2026, 3, 29), utc(2026, 3, 29, 20, 59, 59)),  # EEST +03
        (D(2026, 10, 24), utc(2026, 10, 24, 20, 59, 59)),
        (D(2026, 10, 25), utc(2026, 10, 25, 21, 59, 59)),
        (D(2027, 3, 28), utc(2027, 3, 28, 20, 59, 59)),
        (D(2027, 10, 31), utc(2027, 10, 31, 21, 59, 59)),
    ],
)
def test_end_of_day_utc(d: date, expected: datetime) -> None:
    result = end_of_day_utc(d)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (D(2026, 3, 28), utc(2026, 3, 30, 20, 59, 59)),  # Sat -> Mon 30.3, already +03
        (D(2026, 6, 19), utc(2026, 6, 22, 20, 59, 59)),
        (D(2026, 12, 24), utc(2026, 12, 28, 21, 59, 59)),
    ],
)
def test_deadline_instant(deadline: date, expected: datetime) -> None:
    assert deadline_instant(deadline) == expected


# --- Helsinki wall time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "t", "expected", "local_offset_hours"),
    [
        (D(2026, 3, 28), time(9), utc(2026, 3, 28, 7), 2),
        (D(2026, 3, 29), time(9), utc(2026, 3, 29, 6), 3),  # spring change day
        (D(2026, 10, 24), time(9), utc(2026, 10, 24, 6), 3),
        (D(2026, 10, 25), time(9), utc(2026, 10, 25, 7), 2),  # autumn change day
        (D(2027, 3, 28), time(9), utc(2027, 3, 28, 6), 3),
        (D(2027, 10, 31), time(9), utc(2027, 10, 31, 7), 2),
        (D(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 0, 30), 2),  # before the gap
        (D(2026, 3, 29), time(3, 30), utc(2026, 3, 29, 1), 3),  # in the gap -> 04:00
        (D(2026, 10, 25), time(2, 30), utc(2026, 10, 24, 23, 30), 3),
        (D(2026, 10, 25), time(3, 30), utc(2026, 10, 25, 2), 2),  # ambiguous -> 04:00
        (D(2026, 6, 1), time(3, 0), utc(2026, 6, 1, 1), 3),  # quiet hour -> 04:00
        (D(2026, 1, 15), time(3, 59, 59), utc(2026, 1, 15, 2), 2),
        (D(2026, 1, 15), time(4, 0), utc(2026, 1, 15, 2), 2),
        (D(2026, 1, 15), time(2, 59, 59), utc(2026, 1, 15, 0, 59, 59), 2),
    ],
)
def test_local_time_utc(d: date, t: time, expected: datetime, local_offset_hours: int) -> None:
    result = local_time_utc(d, t)
    assert result == expected
    assert result.tzinfo is UTC
    assert result.astimezone(HELSINKI).utcoffset() == timedelta(hours=local_offset_hours)


def test_local_time_utc_defaults_to_nine() -> None:
    assert local_time_utc(D(2026, 12, 28)) == utc(2026, 12, 28, 7)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 3, 28, 21, 59, 59), D(2026, 3, 28)),
        (utc(2026, 3, 28, 22, 0), D(2026, 3, 29)),
        (utc(2026, 6, 30, 21, 0), D(2026, 7, 1)),
        (datetime(2026, 6, 30, 23, 30, tzinfo=HELSINKI), D(2026, 6, 30)),
    ],
)
def test_local_date(instant: datetime, expected: date) -> None:
    assert local_date(instant) == expected


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 3, 2, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        local_date(naive)
    with pytest.raises(ValueError, match="naive"):
        relative_instant(naive, parse_offset("P1D"))
    with pytest.raises(ValueError, match="naive"):
        format_datetime(naive, "fi")


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 15, 1, 0), utc(2026, 1, 15, 2, 0)),  # 03:00 local
        (utc(2026, 1, 15, 1, 59, 59), utc(2026, 1, 15, 2, 0)),
        (utc(2026, 1, 15, 2, 0), utc(2026, 1, 15, 2, 0)),  # 04:00 local stays
        (utc(2026, 1, 15, 0, 59, 59), utc(2026, 1, 15, 0, 59, 59)),
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 0)),  # first 03:30 (+03)
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0)),  # second 03:30 (+02)
    ],
)
def test_shift_out_of_quiet_hour(instant: datetime, expected: datetime) -> None:
    assert shift_out_of_quiet_hour(instant) == expected


# --- offsets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days", "delta"),
    [
        ("-P14D", -14, timedelta(0)),
        ("P7D", 7, timedelta(0)),
        ("+P1D", 1, timedelta(0)),
        ("P0D", 0, timedelta(0)),
        ("P2W", 14, timedelta(0)),
        ("-P1W", -7, timedelta(0)),
        ("PT30S", 0, timedelta(seconds=30)),
        ("PT5M", 0, timedelta(minutes=5)),
        ("-PT1H30M", 0, -timedelta(hours=1, minutes=30)),
        ("P1DT2H", 1, timedelta(hours=2)),
        ("-P1DT2H", -1, -timedelta(hours=2)),
        ("PT1H2M3S", 0, timedelta(hours=1, minutes=2, seconds=3)),
        ("PT36H", 0, timedelta(hours=36)),
    ],
)
def test_parse_offset(text: str, days: int, delta: timedelta) -> None:
    offset = parse_offset(text)
    assert offset == Offset(days=days, delta=delta)
    assert offset.is_day_based is (delta == timedelta(0))
    assert offset.business is False


def test_parse_offset_business() -> None:
    assert parse_offset("-P3D", business=True) == Offset(days=-3, business=True)


def test_offset_is_frozen() -> None:
    offset = parse_offset("P1D")
    with pytest.raises(AttributeError):
        offset.days = 2  # type: ignore[misc]


@pytest.mark.parametrize("text", INVALID_OFFSETS)
def test_parse_offset_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid offset") as info:
        parse_offset(text)
    message = str(info.value)
    assert repr(text) in message
    assert "ISO 8601" in message
    assert "years, months" in message


def test_parse_offset_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="invalid offset"):
        parse_offset(7)  # type: ignore[arg-type]


def test_parse_offset_rejects_overflow() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_offset("P99999999999D")


# --- reminders and timers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "text", "business", "expected", "local_offset_hours"),
    [
        # Saturday 28.3.2026 -> Monday 30.3.2026, the day after the spring DST change.
        (D(2026, 3, 28), "P0D", False, utc(2026, 3, 30, 6), 3),
        (D(2026, 3, 28), "-P1D", False, utc(2026, 3, 27, 7), 2),  # Sun 29.3 -> Fri 27.3
        (D(2026, 3, 28), "-P3D", False, utc(2026, 3, 27, 7), 2),
        (D(2026, 3, 28), "-P7D", False, utc(2026, 3, 23, 7), 2),
        (D(2026, 3, 28), "-P1D", True, utc(2026, 3, 27, 7), 2),
        (D(2026, 4, 6), "P0D", False, utc(2026, 4, 7, 6), 3),
        # Around the autumn change on Sunday 25.10.2026.
        (D(2026, 10, 26), "P0D", False, utc(2026, 10, 26, 7), 2),
        (D(2026, 10, 26), "-P1D", False, utc(2026, 10, 23, 6), 3),  # Sun 25.10 -> Fri 23.10
        (D(2026, 10, 24), "P0D", False, utc(2026, 10, 26, 7), 2),
        (D(2026, 10, 30), "-P5D", False, utc(2026, 10, 23, 6), 3),  # Sun 25.10 -> Fri 23.10
        (D(2026, 10, 30), "-P1W", False, utc(2026, 10, 23, 6), 3),
        # -P7D from deadlines on holidays: counted from the effective deadline.
        (D(2026, 5, 1), "-P7D", False, utc(2026, 4, 27, 6), 3),  # May Day -> Mon 4.5 -> 27.4
        (D(2026, 12, 24), "-P7D", False, utc(2026, 12, 21, 7), 2),  # -> Mon 28.12 -> 21.12
        (D(2026, 6, 19), "-P7D", False, utc(2026, 6, 15, 6), 3),  # Midsummer Eve -> 22.6 -> 15.6
        (D(2027, 1, 6), "-P7D", False, utc(2026, 12, 31, 7), 2),  # Epiphany -> Thu 7.1
        # -P7D landing on a holiday moves back to the previous business day.
        (D(2026, 5, 8), "-P7D", False, utc(2026, 4, 30, 6), 3),  # 1.5 May Day -> Thu 30.4
        (D(2026, 1, 13), "-P7D", False, utc(2026, 1, 5, 7), 2),  # 6.1 Epiphany -> Mon 5.1
        (D(2026, 12, 31), "-P7D", False, utc(2026, 12, 23, 7), 2),  # 24.12 -> Wed 23.12
        # Business-day offsets.
        (D(2026, 12, 24), "-P3D", True, utc(2026, 12, 21, 7), 2),
        (D(2026, 4, 7), "-P1D", True, utc(2026, 4, 2, 6), 3),
        # Positive day offsets (after the deadline) move forward, never before the deadline.
        (D(2026, 3, 2), "P1D", False, utc(2026, 3, 3, 7), 2),
        (D(2026, 3, 6), "P1D", False, utc(2026, 3, 9, 7), 2),  # Sat 7.3 -> Mon 9.3
    ],
)
def test_reminder_instant_day_based(
    deadline: date, text: str, business: bool, expected: datetime, local_offset_hours: int
) -> None:
    result = reminder_instant(deadline, parse_offset(text, business=business))
    assert result == expected
    local = result.astimezone(HELSINKI)
    assert local.time() == time(9, 0)
    assert local.utcoffset() == timedelta(hours=local_offset_hours)


@pytest.mark.parametrize(
    ("deadline", "text", "expected"),
    [
        (D(2026, 3, 2), "PT30S", utc(2026, 3, 2, 22, 0, 29)),  # exact, past 23:59:59 local
        (D(2026, 3, 2), "-PT30S", utc(2026, 3, 2, 21, 59, 29)),
        (D(2026, 3, 2), "-PT1H30M", utc(2026, 3, 2, 20, 29, 59)),
        (D(2026, 3, 28), "-PT5M", utc(2026, 3, 30, 20, 54, 59)),  # effective deadline Mon 30.3
        (D(2026, 3, 2), "-P1DT2H", utc(2026, 3, 1, 19, 59, 59)),
        (D(2026, 3, 2), "-PT20H", utc(2026, 3, 2, 2, 0)),  # 03:59:59 local -> 04:00 local
    ],
)
def test_reminder_instant_sub_day(deadline: date, text: str, expected: datetime) -> None:
    assert reminder_instant(deadline, parse_offset(text)) == expected


@pytest.mark.parametrize(
    ("start", "text", "business", "expected"),
    [
        (utc(2026, 3, 2, 10, 0), "PT30S", False, utc(2026, 3, 2, 10, 0, 30)),
        (utc(2026, 3, 2, 10, 0), "P1DT2H", False, utc(2026, 3, 3, 12, 0)),
        (utc(2026, 3, 28, 23, 0), "PT1H", False, utc(2026, 3, 29, 0, 0)),
        # 00:30 local on Sat 28.3 + 1 day = Sun 29.3 -> Mon 30.3 23:59:59 +03
        (utc(2026, 3, 27, 22, 30), "P1D", False, utc(2026, 3, 30, 20, 59, 59)),
        (utc(2026, 3, 2, 10, 0), "P14D", False, utc(2026, 3, 16, 21, 59, 59)),
        (utc(2026, 3, 2, 10, 0), "P0D", False, utc(2026, 3, 2, 21, 59, 59)),
        (utc(2026, 12, 18, 10, 0), "P5D", True, utc(2026, 12, 29, 21, 59, 59)),
        (utc(2026, 6, 12, 10, 0), "P1W", False, utc(2026, 6, 22, 20, 59, 59)),  # 19.6 -> 22.6
    ],
)
def test_relative_instant(start: datetime, text: str, business: bool, expected: datetime) -> None:
    assert relative_instant(start, parse_offset(text, business=business)) == expected


# --- presentation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "lang", "expected"),
    [
        (D(2026, 12, 28), "fi", "ma 28.12.2026"),
        (D(2026, 12, 28), "sv", "mån 28.12.2026"),
        (D(2026, 12, 28), "en", "Mon 28 Dec 2026"),
        (D(2026, 12, 28), "de", "ma 28.12.2026"),  # unknown -> Finnish
        (D(2026, 12, 28), "sv-FI", "mån 28.12.2026"),
        (D(2026, 6, 5), "fi", "pe 5.6.2026"),
        (D(2026, 6, 5), "sv", "fre 5.6.2026"),
        (D(2026, 6, 5), "en", "Fri 5 Jun 2026"),
        (D(2026, 9, 1), "en", "Tue 1 Sep 2026"),
    ],
)
def test_format_date(d: date, lang: str, expected: str) -> None:
    assert format_date(d, lang) == expected


@pytest.mark.parametrize(
    ("instant", "lang", "expected"),
    [
        (utc(2026, 12, 28, 7), "fi", "ma 28.12.2026 klo 9.00"),
        (utc(2026, 12, 28, 7), "sv", "mån 28.12.2026 kl. 9.00"),
        (utc(2026, 12, 28, 7), "en", "Mon 28 Dec 2026 09:00"),
        (utc(2026, 12, 28, 7), "xx", "ma 28.12.2026 klo 9.00"),
        (utc(2026, 6, 22, 20, 59, 59), "fi", "ma 22.6.2026 klo 23.59"),  # +03
        (utc(2026, 3, 28, 22, 30), "en", "Sun 29 Mar 2026 00:30"),  # local date differs from UTC
    ],
)
def test_format_datetime(instant: datetime, lang: str, expected: str) -> None:
    assert format_datetime(instant, lang) == expected


@pytest.mark.parametrize(
    ("d", "lang", "expected"),
    [
        (D(2026, 6, 19), "fi", "Juhannusaatto"),
        (D(2026, 6, 19), "sv", "Midsommarafton"),
        (D(2026, 6, 19), "en", "Midsummer Eve"),
        (D(2026, 12, 6), "fi", "Itsenäisyyspäivä"),
        (D(2026, 12, 6), "sv", "Självständighetsdagen"),
        (D(2026, 5, 1), "sv", "Första maj"),
        (D(2026, 12, 24), "xx", "Jouluaatto"),
        (D(2026, 6, 22), "fi", None),
        (D(2026, 3, 28), "en", None),  # a Saturday is not a named holiday
    ],
)
def test_holiday_name(d: date, lang: str, expected: str | None) -> None:
    assert holiday_name(d, lang) == expected


# --- properties ------------------------------------------------------------------------------------


@given(dates)
def test_effective_deadline_is_first_business_day_on_or_after(d: date) -> None:
    effective = effective_deadline(d)
    assert is_business_day(effective)
    assert effective >= d
    day = d
    while day < effective:
        assert not is_business_day(day)
        day += timedelta(days=1)


@given(dates, st.integers(min_value=-60, max_value=0), st.booleans())
def test_reminders_before_deadline_are_nine_on_business_day(d: date, days: int, business: bool) -> None:
    result = reminder_instant(d, Offset(days=days, business=business))
    local = result.astimezone(HELSINKI)
    assert result.tzinfo is UTC
    assert local.time() == time(9, 0)
    assert is_business_day(local.date())
    assert local.date() <= effective_deadline(d)
    assert result < deadline_instant(d)


@given(dates, wall_times)
def test_local_time_utc_avoids_quiet_hour_and_round_trips(d: date, t: time) -> None:
    result = local_time_utc(d, t)
    local = result.astimezone(HELSINKI)
    assert not time(3, 0) <= local.time() < time(4, 0)
    assert local.date() == d
    if not time(3, 0) <= t < time(4, 0):
        assert local.time() == t
    else:
        assert local.time() == time(4, 0)


@given(dates)
def test_end_of_day_round_trips(d: date) -> None:
    local = end_of_day_utc(d).astimezone(HELSINKI)
    assert (local.date(), local.time()) == (d, time(23, 59, 59))
    assert end_of_day_utc(d) + timedelta(seconds=1) == datetime.combine(
        d + timedelta(days=1), time(0), tzinfo=HELSINKI
    )


@given(instants)
def test_local_date_round_trips_through_local_time(instant: datetime) -> None:
    d = local_date(instant)
    assert local_date(local_time_utc(d, time(12, 0))) == d
    assert local_time_utc(d, time(0, 0)) <= instant <= end_of_day_utc(d)


@given(instants)
def test_shift_out_of_quiet_hour_is_idempotent_and_never_earlier(instant: datetime) -> None:
    shifted = shift_out_of_quiet_hour(instant)
    assert shifted >= instant
    assert shift_out_of_quiet_hour(shifted) == shifted
    assert not time(3, 0) <= shifted.astimezone(HELSINKI).time() < time(4, 0)


@given(dates, st.integers(min_value=-40, max_value=40))
def test_add_business_days_inverts_on_business_days(d: date, n: int) -> None:
    start = next_business_day(d)
    moved = add_business_days(start, n)
    assert is_business_day(moved) or n == 0
    assert add_business_days(moved, -n) == start
    assert (moved > start) == (n > 0) and (moved < start) == (n < 0)


@given(
    st.sampled_from(["", "+", "-"]),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=48),
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=7200),
)
def test_parse_offset_round_trips(sign: str, days: int, hours: int, minutes: int, seconds: int) -> None:
    time_part = f"{hours}H{minutes}M{seconds}S"
    offset = parse_offset(f"{sign}P{days}DT{time_part}")
    factor = -1 if sign == "-" else 1
    assert offset.days == factor * days
    assert offset.delta == factor * timedelta(hours=hours, minutes=minutes, seconds=seconds)
    assert offset.is_day_based is (hours == minutes == seconds == 0)


@given(instants, st.integers(min_value=0, max_value=60), st.booleans())
def test_relative_day_based_timers_end_a_business_day(start: datetime, days: int, business: bool) -> None:
    result = relative_instant(start, Offset(days=days, business=business))
    local = result.astimezone(HELSINKI)
    assert local.time() == time(23, 59, 59)
    assert is_business_day(local.date())
    assert local.date() >= local_date(start)
    assert result > start
