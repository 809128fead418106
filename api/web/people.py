"""People in the web pages: who may manage whom, reading the person form, and writing a person.

Administrators manage everyone. A coordinator manages the signatories of their own organisation: they may add one
and edit one who holds no other role; a request for another organisation, or for any other role, is refused (403)
before anything is written. Every field is checked with a message id the page shows beside it, in the reader's
language, and the form comes back with what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from api.web.forms import Form
from engine.actors import Actor
from engine.errors import NotPermitted
from engine.models import LANGUAGES, ROLES, Organisation, Person
from engine.service import UnitOfWork

COORDINATOR_ROLES = frozenset({"signatory"})  # what a coordinator may give to the people of their organisation
NEEDS_ORGANISATION = frozenset({"signatory", "coordinator"})
MAX_LISTED = 500


@dataclass(frozen=True)
class PersonIn:
    """A checked person form."""

    name: str
    email: str
    language: str
    organisation_id: int | None
    roles: frozenset[str]
    title: str | None
    active: bool


@dataclass(frozen=True)
class Listed:
    """One row of the people list."""

    person: Person
    organisation: Organisation | None


def manager_scope(actor: Actor) -> int | None:
    """Return the organisation a coordinator manages (None for an administrator); refuse anyone else (403)."""
    if actor.is_admin:
        return None
    if "coordinator" in actor.roles and actor.organisation_id is not None:
        return actor.organisation_id
    raise NotPermitted("only administrators and coordinators manage people", message_id="people.refused")


def check_may_manage(actor: Actor, person: Person) -> None:
    """Refuse (403) a coordinator editing someone outside their organisation, or someone with more than signing."""
    scope = manager_scope(actor)
    if scope is None:
        return
    if person.organisation_id != scope or not person.role_set <= COORDINATOR_ROLES:
        raise NotPermitted(f"person {person.id} is not a signatory of your organisation",
                           message_id="people.refused")


def organisations_of(session: Session, text: str) -> list[Organisation]:
    """Return the active organisations a typed value names: its kind:code key, or its Finnish or Swedish name."""
    name = text.strip().lower()
    return list(session.execute(select(Organisation).where(
        col(Organisation.active).is_(True),
        or_(col(Organisation.key) == text.strip(), func.lower(col(Organisation.name_fi)) == name,
            func.lower(col(Organisation.name_sv)) == name))).scalars())


def organisation_label(org: Organisation | None, lang: str) -> str:
    """Return an organisation's name in a language (Swedish when it has one), as the form shows and reads it."""
    if org is None:
        return ""
    return (org.name_sv or org.name_fi) if lang == "sv" else org.name_fi


def _email(session: Session, form: Form, person_id: int | None) -> str:
    text = form.get("email")
    if not text:
        form.fail("email", "form.error.required")
        return ""
    if len(text) > 320:
        form.fail("email", "form.error.length")
        return ""
    try:
        email = validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        form.fail("email", "people.error.email")
        return ""
    other = session.execute(select(col(Person.id)).where(func.lower(col(Person.email)) == email)).scalar()
    if other is not None and other != person_id:
        form.fail("email", "people.error.email_taken")
    return email


def _organisation(session: Session, form: Form) -> int | None:
    text = form.get("organisation")
    if not text:
        return None
    found = organisations_of(session, text)
    if len(found) != 1:
        form.fail("organisation", "people.error.organisation" if not found else "people.error.organisation_ambiguous")
        return None
    return found[0].id


def read_person(session: Session, form: Form, roles: list[str], actor: Actor,
                person: Person | None = None) -> PersonIn | None:
    """Check the person form; return the person to write, or None with the problems in `form.errors`.

    A coordinator's organisation is their own whatever was sent, and sending another one, or a role other than
    signatory, is refused with NotPermitted: the form never offers either, so only a forged request asks.
    """
    scope = manager_scope(actor)
    name = form.text("name", max_length=200, min_length=2)
    email = _email(session, form, person.id if person else None)
    language = form.get("language")
    if language not in LANGUAGES:
        form.fail("language", "people.error.language")
    chosen = frozenset(r.strip() for r in roles if r.strip())
    if scope is None:
        organisation_id = _organisation(session, form)
    else:
        organisation_id = scope
        sent = form.get("organisation")
        if sent and {o.id for o in organisations_of(session, sent)} != {scope}:
            raise NotPermitted("a coordinator adds people only to their own organisation",
                               message_id="people.refused")
        if not chosen <= COORDINATOR_ROLES:
            raise NotPermitted("a coordinator gives only the signatory role", message_id="people.refused")
    if chosen - set(ROLES):
        form.fail("roles", "people.error.role")
    title = form.text("title", max_length=200, required=False)
    if organisation_id is None and chosen & NEEDS_ORGANISATION and "organisation" not in form.errors:
        form.fail("organisation", "people.error.organisation_needed")
    if person is not None and person.id == actor.person_id and "admin" in person.role_set and "admin" not in chosen:
        form.fail("roles", "people.error.own_admin")
    active = person is None or form.get("active") == "on"
    if person is not None and person.id == actor.person_id and not active:
        form.fail("active", "people.error.own_active")
    if form.errors or name is None:
        return None
    return PersonIn(name=name, email=email, language=language, organisation_id=organisation_id, roles=chosen,
                    title=title, active=active)


def save_person(uow: UnitOfWork, data: PersonIn, person_id: int | None = None) -> Person:
    """Write a new person, or the changes to one, in the request's unit of work."""
    person = uow.session.get(Person, person_id) if person_id is not None else None
    if person is None:
        person = Person(name=data.name, email=data.email, created_at=uow.now)
    person.name, person.email, person.language = data.name, data.email, data.language
    person.organisation_id, person.title, person.active = data.organisation_id, data.title, data.active
    person.roles = ",".join(sorted(data.roles))
    uow.session.add(person)
    uow.session.flush()
    return person


def list_people(session: Session, scope: int | None, q: str = "", organisation_id: int | None = None
                ) -> tuple[list[Listed], int]:
    """Return the people a manager sees (a coordinator: their organisation's), by name, and how many match."""
    stmt = select(Person)
    if scope is not None:
        stmt = stmt.where(col(Person.organisation_id) == scope)
    elif organisation_id is not None:
        stmt = stmt.where(col(Person.organisation_id) == organisation_id)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(func.lower(col(Person.name)).like(like), func.lower(col(Person.email)).like(like)))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    people = session.execute(stmt.order_by(func.lower(col(Person.name)), col(Person.id)).limit(MAX_LISTED)
                             ).scalars().all()
    ids = {p.organisation_id for p in people if p.organisation_id}
    orgs = {o.id: o for o in session.execute(select(Organisation).where(col(Organisation.id).in_(ids))).scalars()}
    return [Listed(p, orgs.get(p.organisation_id) if p.organisation_id else None) for p in people], total


def all_organisations(session: Session) -> list[Organisation]:
    """Return the active organisations, for the organisation field's suggestions."""
    return list(session.execute(select(Organisation).where(col(Organisation.active).is_(True))
                                .order_by(col(Organisation.name_fi))).scalars())
