"""Finnish business days, Act 150/1930 deadlines, Helsinki wall time, ISO 8601 offsets and localised dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from holidays import country_holidays

from engine.i18n import translate

__all__ = [
    "HELSINKI",
    "Offset",
    "add_business_days",
    "deadline_instant",
    "effective_deadline",
    "end_of_day_utc",
    "format_date",
    "format_datetime",
    "holiday_name",
    "is_business_day",
    "local_date",
    "local_time_utc",
    "next_business_day",
    "parse_offset",
    "previous_business_day",
    "reminder_instant",
    "relative_instant",
    "shift_out_of_quiet_hour",
]

HELSINKI = ZoneInfo("Europe/Helsinki")

END_OF_DAY = time(23, 59, 59)
REMINDER_TIME = time(9, 0)
QUIET_START = time(3, 0)
QUIET_END = time(4, 0)

_ONE_DAY = timedelta(days=1)

# Babel locale per supported language; anything else falls back to Finnish. The CLDR patterns (with their
# words, "klo" and "kl.") are the catalogue's format.date and format.datetime (engine/locale).
_LOCALES = {"fi": "fi", "sv": "sv_FI", "en": "en"}
# Language codes understood by holidays.Finland: plain "sv" silently gives English.
_HOLIDAY_LANGUAGES = {"fi": "fi", "sv": "sv_FI", "en": "en_US"}

_OFFSET_RE = re.compile(
    r"(?P<sign>[+-])?P"
    r"(?:(?P<weeks>\d+)W"
    r"|(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?)",
    re.ASCII,
)
_OFFSET_HELP = (
    "expected an ISO 8601 duration with optional sign made of weeks (P2W) or days and/or "
    "hours, minutes, seconds (P7D, -P14D, +P1D, PT30S, -PT1H30M, P1DT2H); "
    "years, months and fractions are not allowed"
)


# --- business days ---------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _holiday_dates(year: int) -> frozenset[date]:
    """Return the dates of Finland's default-category holidays in a year."""
    return frozenset(country_holidays("FI", years=year).keys())


def warm_calendar(today: date) -> None:
    """Load this year's and next year's holidays now: the first lookup imports every country's tables (0.3-1.2 s),
    which a server should pay at start-up, not in its first request that counts business days."""
    for year in (today.year, today.year + 1):
        _holiday_dates(year)


def _lang(lang: str) -> str:
    """Return the supported language for a code such as "sv-FI", falling back to Finnish."""
    base = lang.replace("-", "_").split("_", 1)[0].lower()
    return base if base in _LOCALES else "fi"


def is_business_day(d: date) -> bool:
    """Return whether d is a weekday that is not a Finnish public holiday or holiday eve."""
    if isinstance(d, datetime):
        raise TypeError(f"expected a date, got datetime {d.isoformat()!r}: use local_date() first")
    return d.weekday() < 5 and d not in _holiday_dates(d.year)


def next_business_day(d: date) -> date:
    """Return d if it is a business day, else the first business day after it."""
    while not is_business_day(d):
        d += _ONE_DAY
    return d


def previous_business_day(d: date) -> date:
    """Return d if it is a business day, else the last business day before it."""
    while not is_business_day(d):
        d -= _ONE_DAY
    return d


def add_business_days(d: date, n: int) -> date:
    """Return the date n business days after d (before it if n < 0), not counting d itself."""
    step = _ONE_DAY if n >= 0 else -_ONE_DAY
    remaining = abs(n)
    while remaining:
        d += step
        if is_business_day(d):
            remaining -= 1
    return d


def effective_deadline(d: date) -> date:
    """Move a deadline falling on a non-business day to the next business day (Act 150/1930)."""
    return next_business_day(d)


# --- Helsinki wall time ----------------------------------------------------------------------------


def _require_aware(instant: datetime) -> None:
    """Raise ValueError unless instant carries a UTC offset."""
    if instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()!r}: an aware datetime is required")


def local_date(instant: datetime) -> date:
    """Return the Helsinki calendar date of an aware datetime."""
    _require_aware(instant)
    return instant.astimezone(HELSINKI).date()


def end_of_day_utc(d: date) -> datetime:
    """Return 23:59:59 Helsinki time on d as an aware UTC datetime."""
    return datetime.combine(d, END_OF_DAY, tzinfo=HELSINKI).astimezone(UTC)


def _in_quiet_hour(local: datetime) -> bool:
    """Return whether a Helsinki-local datetime lies in 03:00-04:00."""
    return QUIET_START <= local.time() < QUIET_END


def shift_out_of_quiet_hour(instant: datetime) -> datetime:
    """Move an instant whose Helsinki time is in 03:00-04:00 to 04:00 that day; return it in UTC."""
    _require_aware(instant)
    local = instant.astimezone(HELSINKI)
    if _in_quiet_hour(local):
        local = datetime.combine(local.date(), QUIET_END, tzinfo=HELSINKI)
    return local.astimezone(UTC)


def local_time_utc(d: date, t: time = REMINDER_TIME) -> datetime:
    """Return the UTC instant of Helsinki wall time t on d, kept out of 03:00-04:00 local.

    Wall times in 03:00-04:00 become 04:00, which also resolves Helsinki's spring gap and
    autumn repeat (both lie in that hour); any other ambiguity takes the earlier instant.
    """
    if QUIET_START <= t.replace(tzinfo=None) < QUIET_END:
        t = QUIET_END
    wall = datetime.combine(d, t.replace(tzinfo=None, fold=0), tzinfo=HELSINKI)
    return shift_out_of_quiet_hour(wall)


# --- offsets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offset:
    """A signed offset: whole days (calendar or business) plus an exact sub-day part."""

    days: int = 0
    delta: timedelta = timedelta(0)
    business: bool = False

    @property
    def is_day_based(self) -> bool:
        """Return whether the offset has no sub-day part."""
        return self.delta == timedelta(0)


def parse_offset(text: str, business: bool = False) -> Offset:
    """Parse a signed ISO 8601 duration such as -P14D, P2W, PT30S or P1DT2H into an Offset."""
    match = _OFFSET_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.group(g) for g in ("weeks", "days", "hours", "minutes", "seconds")):
        raise ValueError(f"invalid offset {text!r}: {_OFFSET_HELP}")
    sign = -1 if match.group("sign") == "-" else 1
    number = {g: int(match.group(g) or 0) for g in ("weeks", "days", "hours", "minutes", "seconds")}
    try:
        delta = timedelta(hours=number["hours"], minutes=number["minutes"], seconds=number["seconds"])
        days = 7 * number["weeks"] + number["days"]
        _ = timedelta(days=days) + delta  # reject values that cannot be used in date arithmetic
    except OverflowError:
        raise ValueError(f"invalid offset {text!r}: value out of range") from None
    return Offset(days=sign * days, delta=sign * delta, business=business)


def _shift_days(d: date, offset: Offset) -> date:
    """Move d by the offset's whole days, counting business days when the offset says so."""
    if offset.business:
        return add_business_days(d, offset.days)
    return d + timedelta(days=offset.days)


def _exact(instant: datetime, offset: Offset) -> datetime:
    """Add the offset to instant as an exact duration (days count as 24 hours)."""
    return (instant + timedelta(days=offset.days) + offset.delta).astimezone(UTC)


# --- deadlines, reminders and timers ---------------------------------------------------------------


def deadline_instant(deadline: date) -> datetime:
    """Return the UTC instant a deadline date ends: 23:59:59 Helsinki on its effective date."""
    return end_of_day_utc(effective_deadline(deadline))


def reminder_instant(deadline: date, offset: Offset) -> datetime:
    """Return the UTC instant a reminder with this offset relative to the deadline is sent.

    Day-based offsets send at 09:00 Helsinki on the shifted date; before the deadline a non-business day
    moves back to the previous business day, after it forward (an overdue notice never precedes the
    deadline); sub-day offsets are exact from the deadline instant but never inside 03:00-04:00 local.
    """
    if not offset.is_day_based:
        return shift_out_of_quiet_hour(_exact(deadline_instant(deadline), offset))
    target = _shift_days(effective_deadline(deadline), offset)
    if offset.days > 0:
        return local_time_utc(next_business_day(target))
    return local_time_utc(previous_business_day(target))


def relative_instant(start: datetime, offset: Offset) -> datetime:
    """Return the UTC instant a timer with this offset from start fires.

    Sub-day offsets are exact; day-based offsets give the end (23:59:59 Helsinki) of the
    effective deadline date that lies the given days after start's local date.
    """
    _require_aware(start)
    if not offset.is_day_based:
        return _exact(start, offset)
    return deadline_instant(_shift_days(local_date(start), offset))


# --- presentation ----------------------------------------------------------------------------------


def format_date(d: date, lang: str) -> str:
    """Format a date like "ma 28.12.2026" (fi), "mån 28.12.2026" (sv) or "Mon 28 Dec 2026" (en)."""
    return _format_date(d, _lang(lang))


@lru_cache(maxsize=8192)
def _format_date(d: date, key: str) -> str:
    # a page or an email formats the same few dates again and again; Babel parses the locale on every call
    return babel_format_date(d, translate(key, "format.date"), locale=_LOCALES[key])


def format_datetime(instant: datetime, lang: str) -> str:
    """Format an aware datetime in Helsinki time, e.g. "ma 28.12.2026 klo 9.00"."""
    _require_aware(instant)
    key = _lang(lang)
    local = instant.astimezone(HELSINKI)
    return babel_format_datetime(local, translate(key, "format.datetime"), tzinfo=HELSINKI, locale=_LOCALES[key])


@lru_cache(maxsize=64)
def _holiday_names(year: int, language: str) -> dict[date, str]:
    """Return Finland's default-category holiday names for a year in a holidays language code."""
    return dict(country_holidays("FI", years=year, language=language).items())


def holiday_name(d: date, lang: str) -> str | None:
    """Return the name of the Finnish holiday on d in the given language, or None."""
    return _holiday_names(d.year, _HOLIDAY_LANGUAGES[_lang(lang)]).get(d)
