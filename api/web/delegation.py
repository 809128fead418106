"""Substitutes (varahenkilö): a person lets another act for them for a period; the history records it.

A substitute acting for someone gets that person's signatory role and organisation, never their coordinator or
admin rights. Every event such an actor causes gets a `DelegatedAct` row in the same transaction (a registry
listener), so the history can say "Anna Aho as substitute for Matti Virtanen".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Connection, bindparam, select
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col

from api.web.auth import person_by_email
from api.web.models import DelegatedAct, Delegation
from engine.actors import Actor
from engine.audit import ON_BEHALF_OF, AuditProblem, Scope, merge_by_case, payload_of, stream
from engine.calendar import HELSINKI
from engine.errors import InvalidInput, NotFound, NotPermitted
from engine.models import Event, Person
from engine.records import TransitionRecord
from engine.registry import Registry
from engine.service import UnitOfWork

MAX_PERIOD = timedelta(days=366)


def _valid_on(day: date) -> ColumnElement[bool]:
    return (col(Delegation.starts_on) <= day) & (col(Delegation.ends_on) >= day) & col(Delegation.revoked_at).is_(None)


# built once (every page asks it: building the statement cost as much as running it)
_SUBSTITUTE: BindParameter[int] = bindparam("substitute_id")
_DAY: BindParameter[date] = bindparam("day")
_PRINCIPALS = (
    select(Person).join(Delegation, col(Delegation.principal_id) == col(Person.id))
    .where(col(Delegation.substitute_id) == _SUBSTITUTE, col(Delegation.starts_on) <= _DAY,
           col(Delegation.ends_on) >= _DAY, col(Delegation.revoked_at).is_(None), col(Person.active).is_(True),
           col(Person.organisation_id) == select(col(Person.organisation_id))
           .where(col(Person.id) == _SUBSTITUTE).scalar_subquery())
    .order_by(col(Person.name)))


def principals_of(session: Session, substitute_id: int, day: date) -> list[Person]:
    """Return the active people of the substitute's own organisation someone may act for on a day."""
    return list(session.execute(_PRINCIPALS, {"substitute_id": substitute_id, "day": day}).scalars().unique())


def delegation_for(session: Session, principal_id: int, substitute_id: int, day: date) -> Delegation | None:
    """Return a delegation letting a substitute act for a principal on a day, or None."""
    return session.execute(select(Delegation).where(
        col(Delegation.principal_id) == principal_id, col(Delegation.substitute_id) == substitute_id, _valid_on(day),
    ).order_by(col(Delegation.id))).scalars().first()


def acting_actor(session: Session, actor: Actor, on_behalf_of: int | None, day: date) -> Actor:
    """Return the actor for an action done for oneself, or as a substitute for someone (checked on the day).

    A substitute acts only inside a delegation's period, never revoked, and only for a person of their own
    organisation: the signatory role they borrow is that organisation's, so an outsider would decide for it.
    """
    if on_behalf_of is None or on_behalf_of == actor.person_id:
        return actor
    principal = session.get(Person, on_behalf_of)
    delegation = None
    if principal is not None and principal.active:
        delegation = delegation_for(session, on_behalf_of, actor.person_id or 0, day)
    if principal is None or delegation is None:
        period = _any_period(session, on_behalf_of, actor.person_id or 0)
        if principal is not None and period is not None:
            raise NotPermitted(f"on_behalf_of: your substitution for person {on_behalf_of} runs "
                               f"{period.starts_on.isoformat()}–{period.ends_on.isoformat()}, not today",
                               action="substitute", message_id="substitute.refused.outside_period",
                               params={"name": principal.name, "starts_on": _fi(period.starts_on),
                                       "ends_on": _fi(period.ends_on)})
        raise NotPermitted(f"on_behalf_of: you are not a substitute for person {on_behalf_of} today",
                           action="substitute", message_id="substitute.refused.not_delegated")
    if actor.organisation_id is None or actor.organisation_id != principal.organisation_id:
        raise NotPermitted(f"on_behalf_of: person {on_behalf_of} belongs to another organisation than you",
                           action="substitute", message_id="substitute.refused.other_organisation",
                           params={"name": principal.name})
    return Actor(person_id=actor.person_id, name=actor.name, roles=principal.role_set & {"signatory"},
                 organisation_id=principal.organisation_id, on_behalf_of_person_id=principal.id,
                 delegation_id=delegation.id)


def _fi(day: date) -> str:
    return f"{day.day}.{day.month}.{day.year}"


def _any_period(session: Session, principal_id: int, substitute_id: int) -> Delegation | None:
    """Return a standing (not revoked) delegation between two people, whatever its dates."""
    return session.execute(select(Delegation).where(
        col(Delegation.principal_id) == principal_id, col(Delegation.substitute_id) == substitute_id,
        col(Delegation.revoked_at).is_(None)).order_by(col(Delegation.id).desc())).scalars().first()


def create_delegation(session: Session, *, principal: Person, substitute_email: str, starts_on: date,
                      ends_on: date, note: str | None, today: date, now: datetime) -> Delegation:
    """Let someone act for a person from one date to another; raise InvalidInput naming the field."""
    substitute = person_by_email(session, substitute_email) if substitute_email else None
    if substitute is None:
        raise InvalidInput("substitute", "no active person has that email address")
    if substitute.id == principal.id:
        raise InvalidInput("substitute", "you cannot be your own substitute")
    if substitute.organisation_id is None or substitute.organisation_id != principal.organisation_id:
        raise InvalidInput("substitute", "a substitute must belong to your own organisation",
                           message_id="substitute.error.other_organisation")
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
    """Registry listener: index, beside the event, that a substitute caused it and for whom.

    The event's own hashed payload already says so (`on_behalf_of`, engine/service.py); this row is the index the
    pages join, and `check_delegated_acts` holds it to the event.
    """
    principal_id = record.actor.on_behalf_of_person_id
    if principal_id is None or record.actor.person_id is None:
        return
    delegation_id = record.actor.delegation_id
    if delegation_id is None:
        day = record.at.astimezone(HELSINKI).date()
        delegation = delegation_for(uow.session, principal_id, record.actor.person_id, day)
        delegation_id = delegation.id if delegation else None
    uow.session.add(DelegatedAct(event_id=record.event_id, case_id=record.case.id, principal_id=principal_id,
                                 substitute_id=record.actor.person_id, delegation_id=delegation_id))
    uow.session.flush()


def check_delegated_acts(conn: Connection, scope: Scope) -> Iterator[AuditProblem]:
    """Audit check: every substitute's act matches its event (who acted, for whom, under which delegation, inside
    that delegation's period), and every event a substitute caused has its row."""
    acts = stream(conn, select(col(DelegatedAct.case_id), col(DelegatedAct.event_id), col(DelegatedAct.principal_id),
                               col(DelegatedAct.substitute_id), col(DelegatedAct.delegation_id),
                               col(Delegation.principal_id).label("d_principal"),
                               col(Delegation.substitute_id).label("d_substitute"), col(Delegation.starts_on),
                               col(Delegation.ends_on), col(Delegation.revoked_at))
                  .outerjoin(Delegation, col(Delegation.id) == col(DelegatedAct.delegation_id))
                  .where(scope.cases(DelegatedAct.case_id))
                  .order_by(col(DelegatedAct.case_id), col(DelegatedAct.event_id)))
    events = stream(conn, select(col(Event.case_id), col(Event.id), col(Event.seq), col(Event.at),
                                 col(Event.actor_id), col(Event.payload))
                    .where(scope.cases(Event.case_id), col(Event.payload).contains(f'"{ON_BEHALF_OF}":'))
                    .order_by(col(Event.case_id), col(Event.id)))
    for cid, rows, evs in merge_by_case(acts, events, lambda a: int(a.case_id), lambda e: int(e.case_id)):
        by_event = {e.id: e for e in evs}
        for act in rows:
            ev = by_event.pop(act.event_id, None)
            if ev is None:
                yield AuditProblem(cid, None, f"a substitute's act names event {act.event_id}, which records no "
                                              "substitute (forged)")
                continue
            recorded = payload_of(ev.payload).get(ON_BEHALF_OF) or {}
            changed = [name for name, stored, want in (
                ("substitute", act.substitute_id, ev.actor_id), ("principal", act.principal_id,
                                                                 recorded.get("person_id")),
                ("delegation", act.delegation_id, recorded.get("delegation_id"))) if stored != want]
            if changed:
                yield AuditProblem(cid, ev.seq, f"the substitute's act differs from this event in "
                                                f"{', '.join(changed)} (edited)")
            elif act.delegation_id is not None:
                day = ev.at.astimezone(HELSINKI).date()
                if (act.d_principal, act.d_substitute) != (act.principal_id, act.substitute_id) or not (
                        act.starts_on <= day <= act.ends_on) or (act.revoked_at is not None
                                                                 and act.revoked_at <= ev.at):
                    yield AuditProblem(cid, ev.seq, f"delegation {act.delegation_id} did not let this substitute "
                                                    "act for this person then (the delegation was edited)")
        for ev in by_event.values():
            if not payload_of(ev.payload).get(ON_BEHALF_OF):
                continue  # the text only appeared inside some other value
            yield AuditProblem(cid, ev.seq, "this substitute's act has no record beside it (deleted)")


def wire(registry: Registry) -> None:
    """Register the listener and the audit check once on a registry."""
    if record_delegated_act not in registry.listeners:
        registry.on_transition(record_delegated_act)
    if check_delegated_acts not in registry.audit_checks:
        registry.audit_checks.append(check_delegated_acts)
