"""Organisations (read) and people (admin-managed), and personal API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from api.deps import ActorDep, AdminDep, CtxDep, SessionDep
from api.schemas import (
    ERROR_RESPONSES,
    OrganisationRead,
    Page,
    PersonCreate,
    PersonRead,
    PersonUpdate,
    TokenCreate,
    TokenIssued,
)
from api.unit import UnitOfWorkRoute
from engine.directory import issue_token, organisation_by_key, person_or_404
from engine.errors import Conflict, InvalidInput, NotPermitted
from engine.models import ORG_KINDS, Organisation, Person

router = APIRouter(responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


@router.get("/organisations", response_model=Page[OrganisationRead], tags=["organisations"])
def list_organisations(session: SessionDep, _actor: ActorDep,
                       q: Annotated[str | None, Query(max_length=100, description="Name contains")] = None,
                       kind: Annotated[str | None, Query(max_length=40)] = None,
                       region: Annotated[str | None, Query(max_length=10, description="Region code")] = None,
                       active: bool | None = True,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Annotated[int, Query(ge=0)] = 0) -> Page[OrganisationRead]:
    """Search the register by name, kind and region."""
    if kind is not None and kind not in ORG_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(ORG_KINDS)}")
    stmt = select(Organisation)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(func.lower(Organisation.name_fi).like(like),
                              func.lower(col(Organisation.name_sv)).like(like)))
    if kind:
        stmt = stmt.where(col(Organisation.kind) == kind)
    if region:
        stmt = stmt.where(col(Organisation.region_code) == region)
    if active is not None:
        stmt = stmt.where(col(Organisation.active) == active)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(Organisation.kind, Organisation.code).limit(limit).offset(offset))
    items = [OrganisationRead.model_validate(o) for o in rows.scalars()]
    return Page[OrganisationRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/organisations/{key}", response_model=OrganisationRead, tags=["organisations"])
def get_organisation(key: str, session: SessionDep, _actor: ActorDep) -> OrganisationRead:
    """Return one organisation by kind:code, e.g. municipality:837."""
    return OrganisationRead.model_validate(organisation_by_key(session, key))


def person_read(session: Session, p: Person) -> PersonRead:
    """Shape a person for the API."""
    org = session.get(Organisation, p.organisation_id) if p.organisation_id else None
    return PersonRead(id=p.id or 0, name=p.name, email=p.email, language=p.language,
                      organisation=org.key if org else None, roles=sorted(p.role_set), title=p.title,
                      active=p.active, digest=p.digest)


def _org_id(session: Session, key: str | None) -> int | None:
    if key is None:
        return None
    org = session.scalars(select(Organisation).where(col(Organisation.key) == key)).first()
    if org is None:
        raise InvalidInput("organisation", f"unknown organisation {key!r} (use kind:code)")
    return org.id


def _email_free(session: Session, email: str, person_id: int | None = None) -> str:
    email = email.lower()
    other = session.execute(select(col(Person.id)).where(func.lower(col(Person.email)) == email)).scalar()
    if other is not None and other != person_id:
        raise Conflict(f"email {email} is already used by person {other}")
    return email


@router.post("/people", response_model=PersonRead, status_code=status.HTTP_201_CREATED, tags=["people"])
def create_person(session: SessionDep, body: PersonCreate, ctx: CtxDep, _admin: AdminDep) -> PersonRead:
    """Create a person (admin)."""
    person = Person(name=body.name, email=_email_free(session, str(body.email)), language=body.language,
                    organisation_id=_org_id(session, body.organisation), roles=",".join(sorted(set(body.roles))),
                    title=body.title, created_at=ctx.clock.now())
    session.add(person)
    session.flush()
    return person_read(session, person)


@router.get("/people", response_model=Page[PersonRead], tags=["people"])
def list_people(session: SessionDep, actor: ActorDep,
                organisation: Annotated[str | None, Query(max_length=80)] = None,
                role: Annotated[str | None, Query(max_length=20)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> Page[PersonRead]:
    """List people: administrators and coordinators see everyone, others only themselves."""
    stmt = select(Person)
    if not (actor.is_admin or "coordinator" in actor.roles):
        stmt = stmt.where(col(Person.id) == actor.person_id)
    if organisation:
        stmt = stmt.where(col(Person.organisation_id) == _org_id(session, organisation))
    if role:
        stmt = stmt.where(col(Person.roles).contains(role))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    people = session.execute(stmt.order_by(col(Person.id)).limit(limit).offset(offset)).scalars().all()
    return Page[PersonRead](items=[person_read(session, p) for p in people], total=total, limit=limit,
                            offset=offset)


@router.get("/people/{person_id}", response_model=PersonRead, tags=["people"])
def get_person(person_id: int, session: SessionDep, actor: ActorDep) -> PersonRead:
    """Return a person (yourself, or anyone for admins and coordinators)."""
    if not (actor.is_admin or "coordinator" in actor.roles or actor.person_id == person_id):
        raise NotPermitted("you may only read your own person record")
    return person_read(session, person_or_404(session, person_id))


@router.patch("/people/{person_id}", response_model=PersonRead, tags=["people"])
def update_person(session: SessionDep, person_id: int, body: PersonUpdate, ctx: CtxDep, _admin: AdminDep) -> PersonRead:
    """Change a person (admin)."""
    person = person_or_404(session, person_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "language", "title", "active", "digest"):
        if field in changes:
            if changes[field] is None and field in ("name", "language", "active", "digest"):
                raise InvalidInput(field, "may not be null")
            setattr(person, field, changes[field])
    if "email" in changes:
        if changes["email"] is None:
            raise InvalidInput("email", "may not be null")
        person.email = _email_free(session, str(changes["email"]), person_id)
    if "organisation" in changes:
        person.organisation_id = _org_id(session, changes["organisation"])
    if "roles" in changes:
        person.roles = ",".join(sorted(set(changes["roles"] or [])))
    session.flush()
    return person_read(session, person)


@router.post("/people/{person_id}/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED,
             tags=["people"])
def create_token(session: SessionDep, person_id: int, ctx: CtxDep, _admin: AdminDep,
                 body: TokenCreate | None = None) -> TokenIssued:
    """Issue a personal API token; it is shown once and stored only as a hash."""
    label = body.label if body else ""
    person_or_404(session, person_id)
    token = issue_token(session, person_id, ctx.clock.now(), label)
    session.flush()
    return TokenIssued(token=token, person_id=person_id, label=label)
