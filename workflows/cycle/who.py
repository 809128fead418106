"""Who acts on a cycle: who runs it (its own coordinator, administrators) and who speaks for a responsible.

Read on any session, so the services (inside their unit of work) and the pages (on a read session) ask alike.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.models import Case, Organisation
from engine.records import CaseRow
from workflows.cycle.models import NetworkMember


def runs_cycle(case: CaseRow | Case, actor: Actor) -> bool:
    """Tell whether the actor runs this cycle: its own coordinator, or an administrator (not any coordinator)."""
    return actor.is_admin or ("coordinator" in actor.roles and actor.person_id is not None
                              and actor.person_id == case.coordinator_id)


def is_staff_of(session: Session, actor: Actor, responsible: str) -> bool:
    """Tell whether the actor works for a responsible: the council's own people, or the network's members."""
    if actor.person_id is None:
        return False
    if responsible.startswith("network:"):
        return session.execute(select(col(NetworkMember.id)).where(
            col(NetworkMember.network) == responsible.removeprefix("network:"),
            col(NetworkMember.person_id) == actor.person_id)).first() is not None
    if actor.organisation_id is None:
        return False
    key = session.execute(select(col(Organisation.key))
                          .where(col(Organisation.id) == actor.organisation_id)).scalar()
    return key == responsible


def speaks_for(session: Session, actor: Actor, responsible: str, cycle: CaseRow | Case | None = None) -> bool:
    """Tell whether the actor may report or note for a responsible: its own staff, or who runs the cycle."""
    if actor.is_admin or (cycle is not None and runs_cycle(cycle, actor)):
        return True
    return is_staff_of(session, actor, responsible)


def staff_keys(session: Session, actor: Actor) -> set[str]:
    """Return every responsible the actor works for: their organisation's key and `network:<n>` of their networks."""
    if actor.person_id is None:
        return set()
    keys = {f"network:{n}" for n in session.execute(select(col(NetworkMember.network)).where(
        col(NetworkMember.person_id) == actor.person_id)).scalars()}
    if actor.organisation_id is not None:
        key = session.execute(select(col(Organisation.key))
                              .where(col(Organisation.id) == actor.organisation_id)).scalar()
        if key:
            keys.add(key)
    return keys
