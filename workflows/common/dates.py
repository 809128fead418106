"""Dates and deadlines as the workflow services read them: the Helsinki calendar day, effective deadlines."""

from __future__ import annotations

from datetime import date

from sqlalchemy import update

from engine.calendar import HELSINKI, deadline_instant
from engine.models import Case
from engine.records import CaseRow
from engine.service import UnitOfWork

CASE = Case.__table__  # type: ignore[attr-defined]


def today(uow: UnitOfWork) -> date:
    """Return the transaction's Helsinki calendar date."""
    return uow.now.astimezone(HELSINKI).date()


def deadline_passed(uow: UnitOfWork, deadline: date) -> bool:
    """Tell whether a deadline (a Helsinki date, moved past non-business days) has ended."""
    return uow.now > deadline_instant(deadline)


def set_deadline(uow: UnitOfWork, case: CaseRow, deadline: date | None) -> None:
    """Change a case's deadline column (set it before firing into the state whose timers read it)."""
    case.deadline = deadline
    uow.session.execute(update(CASE).where(CASE.c.id == case.id).values(deadline=deadline, updated_at=uow.now))
