"""Substitutes (varahenkilö): a person lets another act for them for a period; the history records it.

A substitute acting for someone gets that person's signatory role and organisation, never their coordinator or
admin rights. Every event such an actor causes gets a `DelegatedAct` row in the same transaction (a registry
listener), so the history can say "Anna Aho as substitute for Matti Virtanen".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col

from api.web.auth import person_by_email
from api.web.models import DelegatedAct, Delegation
from engine.actors import Actor
from engine.calendar import HELSINKI
from engine.errors import InvalidInput, NotFound, NotPermitted
from engine.models import Person
from engine.records import TransitionRecord
from engine.registry import Registry
from engine.service import UnitOfWork

MAX_PERIOD = timedelta(days=366)


def _valid_on(day: date) -> ColumnElement[bool]:
    return (col(Delegation.starts_on) <= day) & (col(Delegation.ends_on) >= day) & col(Delegation.revoked_at).is_(None)


def principals_of(session: Session, substitute_id: int, day: date) -> list[Person]:
    """Return the active people someone may act for on a day."""
    return list(session.execute(
        select(Person).join(Delegation, col(Delegation.principal_id) == col(Person.id))
        .where(col(Delegation.substitute_id) == substitute_id, _valid_on(day), col(Person.active).is_(True))
        .order_by(col(Person.name))
    ).scalars().unique())


def delegation_for(session: Session, principal_id: int, substitute_id: int, day: date) -> Delegation | None:
    """Return a delegation letting a substitute act for a principal on a day, or None."""
    return session.execute(select(Delegation).where(
        col(Delegation.principal_id) == principal_id, col(Delegation.substitute_id) == substitute_id, _valid_on(day),
    ).order_by(col(Delegation.id))).scalars().first()


def acting_actor(session: Session, actor: Actor, on_behalf_of: int | None, day: date) -> Actor:
    """Return the actor for an action done for oneself, or as a substitute for someone (checked)."""
    if on_behalf_of is None or on_behalf_of == actor.person_id:
        return actor
    principal = session.get(Person, on_behalf_of)
    if principal is None or not principal.active or delegation_for(session, on_behalf_of, actor.person_id or 0,
                                                                  day) is None:
        raise NotPermitted(f"on_behalf_of: you are not a substitute for person {on_behalf_of} today")
    return Actor(person_id=actor.person_id, name=actor.name, roles=principal.role_set & {"signatory"},
                 organisation_id=principal.organisation_id, on_behalf_of_person_id=principal.id)


def create_delegation(session: Session, *, principal: Person, substitute_email: str, starts_on: date,
                      ends_on: date, note: str | None, today: date, now: datetime) -> Delegation:
    """Let someone act for a person from one date to another; raise InvalidInput naming the field."""
    substitute = person_by_email(session, substitute_email) if substitute_email else None
    if substitute is None:
        raise InvalidInput("substitute", "no active person has that email address")
    if substitute.id == principal.id:
        raise InvalidInput("substitute", "you cannot be your own substitute")
    if starts_on < today:
        raise InvalidInput("starts_on", "the period cannot start in the past")
    if ends_on < starts_on:
        raise InvalidInput("ends_on", "the period must end on or after its first day")
    if ends_on - starts_on > MAX_PERIOD:
        raise InvalidInput("ends_on", "a period can be at most a year")
    row = Delegation(principal_id=principal.id or 0, substitute_id=substitute.id or 0, starts_on=starts_on,
                     ends_on=ends_on, note=(note or None), created_by=principal.id or 0, created_at=now)
    session.add(row)
    session.flush()
    return row


def revoke_delegation(session: Session, delegation_id: int, person_id: int, now: datetime) -> None:
    """End a delegation early; only its principal or its substitute may."""
    row = session.get(Delegation, delegation_id)
    if row is None or person_id not in (row.principal_id, row.substitute_id):
        raise NotFound(f"no substitution with id {delegation_id}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()


def delegations_of(session: Session, person_id: int) -> tuple[list[tuple[Delegation, Person]],
                                                              list[tuple[Delegation, Person]]]:
    """Return (who substitutes for me, whom I substitute for), each with the other person, newest first."""
    def query(mine: Mapped[int], other: Mapped[int]) -> list[tuple[Delegation, Person]]:
        return list(session.execute(
            select(Delegation, Person).join(Person, col(Person.id) == other)
            .where(mine == person_id).order_by(col(Delegation.id).desc()).limit(100)).all())
    return (query(col(Delegation.principal_id), col(Delegation.substitute_id)),
            query(col(Delegation.substitute_id), col(Delegation.principal_id)))


def record_delegated_act(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: remember, with the event, that a substitute caused it and for whom."""
    principal_id = record.actor.on_behalf_of_person_id
    if principal_id is None or record.actor.person_id is None:
        return
    day = record.at.astimezone(HELSINKI).date()
    delegation = delegation_for(uow.session, principal_id, record.actor.person_id, day)
    uow.session.add(DelegatedAct(event_id=record.event_id, case_id=record.case.id, principal_id=principal_id,
                                 substitute_id=record.actor.person_id,
                                 delegation_id=delegation.id if delegation else None))
    uow.session.flush()


def wire(registry: Registry) -> None:
    """Register the listener once on a registry."""
    if record_delegated_act not in registry.listeners:
        registry.on_transition(record_delegated_act)
