"""Council terms (valtuustokausi) of the wellbeing services counties: 1.6.2025–31.5.2029 and every four years on."""

from __future__ import annotations

from datetime import date

FIRST_TERM = (date(2022, 3, 1), date(2025, 5, 31))  # the first county councils' shortened term
TERM_YEARS = 4
BASE = date(2025, 6, 1)


def term_of(d: date) -> tuple[date, date]:
    """Return the (first day, last day) of the council term containing d."""
    if d < BASE:
        return FIRST_TERM
    k = (d.year - BASE.year - (1 if (d.month, d.day) < (BASE.month, BASE.day) else 0)) // TERM_YEARS
    start = date(BASE.year + TERM_YEARS * k, 6, 1)
    return start, date(start.year + TERM_YEARS, 5, 31)


def next_term(d: date) -> tuple[date, date]:
    """Return the council term after the one containing d."""
    _start, end = term_of(d)
    return term_of(date(end.year, 6, 1))


def term_label(term: tuple[date, date]) -> str:
    """Write a term as '2025–2029'."""
    return f"{term[0].year}–{term[1].year}"
