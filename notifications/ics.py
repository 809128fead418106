"""The deadline as an iCalendar attachment: one all-day VEVENT, written directly (split from notifications/mime.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_PRODID = "-//Vuosikello//EN"


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; naive values (as stored by the database) are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def deadline_ics(
    uid: str,
    summary: str,
    description: str,
    deadline_date: date,
    url: str | None = None,
    alarm_days_before: int | None = None,
    *,
    dtstamp: datetime | None = None,
    sequence: int = 0,
) -> bytes:
    """Return a METHOD:PUBLISH VCALENDAR holding one all-day VEVENT for a deadline (DTEND the exclusive next day).

    Written directly rather than through the icalendar library, which cost two thirds of rendering an approval's
    email (one .ics per recipient: each carries the reader's own sign-in link): the same lines in the same order
    as icalendar writes them (its canonical order, then alphabetical), TEXT values escaped per RFC 5545 3.3.11,
    lines folded at 75 octets without splitting a UTF-8 character or an escape. tests/workflows/test_ics_deadline.py
    holds the bytes equal to icalendar's and parses them back with it.
    """
    if isinstance(deadline_date, datetime):
        raise TypeError("deadline_date must be a date, not a datetime (the event is all-day)")
    if alarm_days_before is not None and alarm_days_before < 0:
        raise ValueError("alarm_days_before must be >= 0")
    if url is not None and ("\r" in url or "\n" in url):
        raise ValueError("a URL cannot hold a line break")
    stamp = as_utc(dtstamp or datetime.now(UTC))
    end = deadline_date + timedelta(days=1)
    summary_text = _ics_text(summary)
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:" + _ics_text(_PRODID), "METHOD:PUBLISH", "BEGIN:VEVENT",
        "SUMMARY:" + summary_text,
        f"DTSTART;VALUE=DATE:{deadline_date.year:04d}{deadline_date.month:02d}{deadline_date.day:02d}",
        f"DTEND;VALUE=DATE:{end.year:04d}{end.month:02d}{end.day:02d}",
        f"DTSTAMP:{stamp.year:04d}{stamp.month:02d}{stamp.day:02d}T{stamp.hour:02d}{stamp.minute:02d}"
        f"{stamp.second:02d}Z",
        "UID:" + _ics_text(uid),
        f"SEQUENCE:{int(sequence)}",
        "DESCRIPTION:" + _ics_text(description),
        "TRANSP:TRANSPARENT",
    ]
    if url is not None:
        lines.append("URL:" + url)
    if alarm_days_before is not None:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:" + summary_text,
                  f"TRIGGER:-P{alarm_days_before}D" if alarm_days_before else "TRIGGER:P0D", "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join([_ics_fold(line) for line in lines]) + "\r\n").encode("utf-8")


def _ics_text(text: str) -> str:
    """Escape an RFC 5545 TEXT value: backslash, semicolon, comma; any line break as \\n."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


_ICS_LIMIT = 75  # octets; icalendar breaks before the character that would reach it (RFC 5545 3.1)


def _ics_fold(line: str) -> str:
    """Fold a content line as icalendar does: each piece under 75 octets, an escape's backslash kept with it."""
    if len(line) < _ICS_LIMIT and (line.isascii() or len(line.encode("utf-8")) < _ICS_LIMIT):
        return line
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = 1 if char < "\x80" else len(char.encode("utf-8"))
        if current and size + width >= _ICS_LIMIT:
            if len(current) > 1 and current[-1] in "\\^":  # do not split an escape from what it escapes
                carried = current.pop()
                pieces.append("".join(current))
                current, size = [carried], 1
            else:
                pieces.append("".join(current))
                current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return "\r\n ".join(pieces)
