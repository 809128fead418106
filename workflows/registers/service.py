"""Write and list the registers: meetings and statements, by year."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import InvalidInput, NotPermitted
from engine.models import Organisation
from workflows.registers.models import Meeting, Statement
from workflows.registers.schemas import MeetingIn, MeetingRead, StatementIn, StatementRead


def _may_write(actor: Actor) -> None:
    if not (actor.is_admin or "coordinator" in actor.roles):
        raise NotPermitted("the registers are kept by coordinators and administrators")


def _org_id(session: Session, key: str | None, field: str) -> int | None:
    if key is None:
        return None
    found = session.execute(select(col(Organisation.id)).where(col(Organisation.key) == key)).scalar()
    if found is None:
        raise InvalidInput(field, f"unknown organisation {key!r} (use kind:code)")
    return int(found)


def add_meeting(session: Session, data: MeetingIn, actor: Actor, now: object) -> Meeting:
    """Register a meeting."""
    _may_write(actor)
    row = Meeting(kind=data.kind, title=data.title, held_on=data.held_on,
                  minutes_url=str(data.minutes_url) if data.minutes_url else None,
                  organisation_id=_org_id(session, data.organisation, "organisation"), network=data.network,
                  created_by=actor.person_id, created_at=now)  # type: ignore[arg-type]
    session.add(row)
    session.flush()
    return row


def add_statement(session: Session, data: StatementIn, actor: Actor, now: object) -> Statement:
    """Register a statement."""
    _may_write(actor)
    row = Statement(title=data.title, issued_on=data.issued_on, addressee=data.addressee,
                    url=str(data.url) if data.url else None,
                    organisation_id=_org_id(session, data.organisation, "organisation"),
                    created_by=actor.person_id, created_at=now)  # type: ignore[arg-type]
    session.add(row)
    session.flush()
    return row


def _keys(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(col(Organisation.id), col(Organisation.key)).where(
        col(Organisation.id).in_(wanted))).all())


def meetings(session: Session, start: date, end: date) -> list[MeetingRead]:
    """List the meetings held between two dates (inclusive), oldest first."""
    rows = list(session.execute(select(Meeting).where(col(Meeting.held_on) >= start, col(Meeting.held_on) <= end)
                                .order_by(col(Meeting.held_on), col(Meeting.id))).scalars())
    keys = _keys(session, {r.organisation_id for r in rows})
    return [MeetingRead(id=r.id or 0, kind=r.kind, title=r.title, held_on=r.held_on, minutes_url=r.minutes_url,
                        organisation=keys.get(r.organisation_id or 0), network=r.network) for r in rows]


def statements(session: Session, start: date, end: date) -> list[StatementRead]:
    """List the statements issued between two dates (inclusive), oldest first."""
    rows = list(session.execute(select(Statement).where(col(Statement.issued_on) >= start,
                                                        col(Statement.issued_on) <= end)
                                .order_by(col(Statement.issued_on), col(Statement.id))).scalars())
    keys = _keys(session, {r.organisation_id for r in rows})
    return [StatementRead(id=r.id or 0, title=r.title, issued_on=r.issued_on, addressee=r.addressee, url=r.url,
                          organisation=keys.get(r.organisation_id or 0)) for r in rows]
