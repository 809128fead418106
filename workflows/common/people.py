"""Organisations and people as the workflow services look them up: by key, and an organisation's contacts."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from engine.errors import InvalidInput
from engine.models import Organisation, Person
from engine.service import UnitOfWork


def org_by_key(uow: UnitOfWork, key: str, field: str) -> Organisation:
    """Return an active organisation by kind:code or raise InvalidInput naming the field."""
    org = uow.session.scalars(select(Organisation).where(col(Organisation.key) == key)).first()
    if org is None:
        raise InvalidInput(field, f"unknown organisation {key!r} (use kind:code, e.g. regional_council:06)")
    if not org.active:
        raise InvalidInput(field, f"organisation {key!r} is no longer active")
    return org


def contacts_of(uow: UnitOfWork, organisation_id: int | None, roles: tuple[str, ...] = ("signatory",)) -> list[int]:
    """Return the active people of an organisation holding one of the roles (its contacts)."""
    if organisation_id is None:
        return []
    people = uow.session.execute(select(Person).where(
        col(Person.organisation_id) == organisation_id, col(Person.active).is_(True)).order_by(col(Person.id))
    ).scalars()
    return [p.id for p in people if p.id is not None and p.role_set & set(roles)]
