"""Small helpers the nomination, cycle and review workflows share: dates, deadlines, people, mail."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from engine.calendar import HELSINKI, deadline_instant
from engine.errors import InvalidInput
from engine.models import Case, Organisation, Person
from engine.service import CaseRow, UnitOfWork

log = logging.getLogger("vuosikello.workflows")
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


def org_by_key(uow: UnitOfWork, key: str, field: str) -> Organisation:
    """Return an active organisation by kind:code or raise InvalidInput naming the field."""
    org = uow.session.execute(select(Organisation).where(Organisation.key == key)).scalars().first()
    if org is None:
        raise InvalidInput(field, f"unknown organisation {key!r} (use kind:code, e.g. regional_council:06)")
    if not org.active:
        raise InvalidInput(field, f"organisation {key!r} is no longer active")
    return org


def org_keys(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    """Return kind:code keys by organisation id."""
    if not ids:
        return {}
    rows = uow.session.execute(select(Organisation.id, Organisation.key).where(col(Organisation.id).in_(ids)))
    return {i: k for i, k in rows}


def contacts_of(uow: UnitOfWork, organisation_id: int | None, roles: tuple[str, ...] = ("signatory",)) -> list[int]:
    """Return the active people of an organisation holding one of the roles (its contacts)."""
    if organisation_id is None:
        return []
    people = uow.session.execute(select(Person).where(
        Person.organisation_id == organisation_id, col(Person.active).is_(True)).order_by(col(Person.id))).scalars()
    return [p.id for p in people if p.id is not None and p.role_set & set(roles)]


def queue_mail(uow: UnitOfWork, *, template: str, key: str, case_id: int | None = None,
               person_id: int | None = None, address: str | None = None, language: str | None = None,
               context: dict[str, Any] | None = None, cc: list[str] | None = None,
               attachments: list[Any] | None = None) -> bool:
    """Queue one email in this transaction through the outbox; return False when no outbox is installed."""
    try:
        from notifications.outbox import queue_email
    except ImportError:  # the outbox (issue 3) is not in this build: the business record still commits
        log.warning("no outbox: email %s (%s) not queued", template, key)
        return False
    kwargs: dict[str, Any] = dict(template=template, key=key, case_id=case_id, person_id=person_id,
                                  address=address, language=language, context=context or {})
    if cc:
        kwargs["cc"] = cc
    if attachments:
        kwargs["attachments"] = attachments
    queue_email(uow, **kwargs)
    return True
