"""Who may read what: administrators everything, coordinators their cases, members their organisation's."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import CaseNotFound
from engine.models import Case


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """Return a SQL condition selecting the cases an actor may see (deny by default)."""
    if actor.is_admin:
        return col(Case.id).is_not(None)
    conds: list[ColumnElement[bool]] = [
        col(Case.coordinator_id) == actor.person_id,
        col(Case.parent_id).in_(select(col(Case.id)).where(col(Case.coordinator_id) == actor.person_id))]
    if actor.organisation_id is not None:
        conds += [col(Case.organisation_id) == actor.organisation_id,
                  col(Case.id).in_(select(col(Case.parent_id))
                                   .where(col(Case.organisation_id) == actor.organisation_id))]
    return or_(*conds)


def readable_case(session: Session, actor: Actor, case_id: int) -> Case:
    """Return a case the actor may see; unknown and hidden cases are both 404."""
    case = session.scalars(select(Case).where(col(Case.id) == case_id, visible_cases(actor))).first()
    if case is None:
        raise CaseNotFound(f"no case with id {case_id}")
    return case
