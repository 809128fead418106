"""The deadline .ics written directly (notifications/ics.deadline_ics) against the icalendar library.

The reference below is what deadline_ics did before (the icalendar library building the same calendar): the direct
writer must give the same bytes for every text icalendar escapes correctly, and icalendar must parse its output
back to the values it was given, including long lines of multi-byte characters folded at 75 octets.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.ics import deadline_ics

STAMP = datetime(2026, 12, 2, 7, 30, 15, 123456, tzinfo=UTC)


def reference(uid: str, summary: str, description: str, deadline_date: date, url: str | None = None,
              alarm_days_before: int | None = None, *, dtstamp: datetime = STAMP, sequence: int = 0) -> bytes:
    """The calendar as the icalendar library builds it (deadline_ics up to this change)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Vuosikello//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", dtstamp.astimezone(UTC))
    event.add("dtstart", deadline_date)
    event.add("dtend", deadline_date + timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("sequence", sequence)
    event.add("transp", "TRANSPARENT")
    if url is not None:
        event.add("url", url)
    if alarm_days_before is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", timedelta(days=-alarm_days_before))
        event.add_component(alarm)
    calendar.add_component(event)
    raw: bytes = calendar.to_ical()
    return raw


CASES = [
    ("deadline-5@vuosikello.local", "Määräaika: Yhteistoimintasopimus", "Vastaa viimeistään ma 2.3.2026.",
     "https://vuosikello.local/l/abc", None),
    ("deadline-5@vuosikello.local",
     "Määräaika: Sopimus, jossa on pitkä nimi ja erikoismerkkejä; pilkku, kenoviiva \\ ja lisää tekstiä",
     "Rivi 1\nRivi 2 ääkköset ja pitkä teksti " * 4 + "\r\nloppu\rreturn",
     "http://127.0.0.1/l/" + "abcdefghijklmnopqrstuvwxyz0123456789" * 3, 3),
    ("u@x", "s", "d", None, 0),
    ("u@x", "ä" * 80, "€" * 40 + "𝄞" * 30, None, 14),
    # an escape at a fold: the backslash goes to the next line with what it escapes (as icalendar does)
    ("u@x", "a" * 64 + ";" + "b" * 20, "x" * 72 + ",,,," + "y" * 80, None, 1),
    ("u@x", "a" * 63 + "\\" + "b" * 20, "^" * 200, None, None),
]


@pytest.mark.parametrize(("uid", "summary", "description", "url", "alarm"), CASES)
def test_the_same_bytes_as_icalendar(uid: str, summary: str, description: str, url: str | None,
                                     alarm: int | None) -> None:
    got = deadline_ics(uid, summary, description, date(2026, 3, 2), url=url, alarm_days_before=alarm,
                       dtstamp=STAMP, sequence=2)
    assert got == reference(uid, summary, description, date(2026, 3, 2), url, alarm, sequence=2)
    for line in got.split(b"\r\n"):
        assert len(line) <= 75


@pytest.mark.parametrize(("uid", "summary", "description", "url", "alarm"), CASES)
def test_icalendar_reads_back_what_was_given(uid: str, summary: str, description: str, url: str | None,
                                             alarm: int | None) -> None:
    raw = deadline_ics(uid, summary, description, date(2026, 12, 31), url=url, alarm_days_before=alarm,
                       dtstamp=datetime(2026, 12, 2, 9, 30, tzinfo=UTC))
    (event,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert str(event["UID"]) == uid
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == description.replace("\r\n", "\n").replace("\r", "\n")
    assert event["DTSTART"].dt == date(2026, 12, 31)
    assert event["DTEND"].dt == date(2027, 1, 1)
    assert event["DTSTAMP"].dt == datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    assert (str(event["URL"]) if "URL" in event else None) == url
    alarms = event.walk("VALARM")
    assert [a["TRIGGER"].dt for a in alarms] == ([] if alarm is None else [timedelta(days=-alarm)])


def test_a_naive_stamp_is_utc_and_a_url_cannot_break_a_line() -> None:
    naive = deadline_ics("u@x", "s", "d", date(2026, 3, 2), dtstamp=datetime(2026, 3, 1, 8, 0))
    assert b"DTSTAMP:20260301T080000Z\r\n" in naive
    helsinki = datetime(2026, 3, 1, 10, 0, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Helsinki"))
    assert b"DTSTAMP:20260301T100000Z\r\n" in deadline_ics("u@x", "s", "d", date(2026, 3, 2), dtstamp=helsinki)
    with pytest.raises(ValueError):
        deadline_ics("u@x", "s", "d", date(2026, 3, 2), url="https://x/\r\nBEGIN:VEVENT")


# texts icalendar itself escapes correctly: it turns a literal backslash-N into a line break, which the direct
# writer does not (it escapes the backslash, as RFC 5545 asks)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300).filter(lambda t: "\\N" not in t)


@settings(max_examples=300, deadline=None)
@given(summary=_TEXT, description=_TEXT, uid=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                                                     max_size=120).filter(lambda t: "\\N" not in t),
       alarm=st.none() | st.integers(0, 400), sequence=st.integers(0, 10_000))
def test_any_text_gives_icalendar_bytes(summary: str, description: str, uid: str, alarm: int | None,
                                        sequence: int) -> None:
    got = deadline_ics(uid, summary, description, date(2027, 2, 28), url="https://v.example/l/" + "t" * 60,
                       alarm_days_before=alarm, dtstamp=STAMP, sequence=sequence)
    assert got == reference(uid, summary, description, date(2027, 2, 28), "https://v.example/l/" + "t" * 60,
                            alarm, sequence=sequence)


def test_a_literal_backslash_n_stays_text() -> None:
    raw = deadline_ics("u@x", "C:\\Nimet", "d", date(2026, 3, 2), dtstamp=STAMP)
    assert b"SUMMARY:C:\\\\Nimet\r\n" in raw
