"""People pages: administrators add and edit anyone; a coordinator adds and edits their organisation's signatories.

`/people` lists whom the signed-in person manages, `/people/new` and `/people/{id}` are the form. A request
outside what the person manages is answered 403 with nothing written (`api.web.people`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.forms import Form as WebForm
from api.web.people import (
    COORDINATOR_ROLES,
    all_organisations,
    check_may_manage,
    list_people,
    manager_scope,
    organisation_label,
    organisations_of,
    read_person,
    save_person,
)
from api.web.render import render
from api.web.routing import User, WebUser, error_page, web_router
from engine.errors import NotFound, NotPermitted
from engine.models import LANGUAGES, ROLES, Organisation, Person

router = web_router()
NOTICES = ("added", "saved")


def _refused(request: Request, why: str = "people.refused") -> Response:
    return error_page(request, 403, detail=why)


def _form_page(request: Request, session: Session, user: WebUser, form: WebForm, roles: set[str],
               person: Person | None = None, status: int = 200) -> Response:
    scope = manager_scope(user.actor)
    own = session.get(Organisation, scope) if scope is not None else None
    roles_offered = [r for r in ROLES if scope is None or r == "signatory"]
    return render(request, "admin_person.html", user.lang, status=status, user=user, form=form, person=person,
                  roles=roles, roles_offered=roles_offered, languages=LANGUAGES, own=own,
                  own_label=organisation_label(own, user.lang),
                  organisations=all_organisations(session) if scope is None else [])


@router.get("/people")
def people_page(request: Request, user: User, session: SessionDep, q: str = "", organisation: str = "",
                notice: str = "") -> Response:
    """List the people the signed-in person manages, with a search and a link to add one."""
    try:
        scope = manager_scope(user.actor)
    except NotPermitted:
        return _refused(request, "people.refused.role")
    form = WebForm({"q": q[:200], "organisation": organisation[:200]})
    org_id = None
    if scope is None and form.get("organisation"):
        found = organisations_of(session, form.get("organisation"))
        if len(found) == 1:
            org_id = found[0].id
        else:
            form.fail("organisation", "people.error.organisation" if not found
                      else "people.error.organisation_ambiguous")
    rows, total = list_people(session, scope, form.get("q"), org_id)
    if form.errors:
        rows, total = [], 0
    own = session.get(Organisation, scope) if scope is not None else None
    return render(request, "admin_people.html", user.lang, status=422 if form.errors else 200, user=user,
                  rows=rows, total=total, form=form, own=own, own_label=organisation_label(own, user.lang),
                  label=lambda org: organisation_label(org, user.lang),
                  role_order=ROLES, editable=lambda p: scope is None or p.role_set <= COORDINATOR_ROLES,
                  organisations=all_organisations(session) if scope is None else [],
                  notice=notice if notice in NOTICES else None)


@router.get("/people/new")
def new_person_page(request: Request, user: User, session: SessionDep) -> Response:
    """Show the empty person form (a coordinator's: a signatory of their own organisation)."""
    try:
        scope = manager_scope(user.actor)
    except NotPermitted:
        return _refused(request, "people.refused.role")
    return _form_page(request, session, user, WebForm({"language": "fi"}), {"signatory"} if scope else set())


def _submitted(name: str, email: str, language: str, organisation: str, title: str, active: str) -> WebForm:
    return WebForm(dict(name=name, email=email, language=language, organisation=organisation, title=title,
                        active=active))


def _save(work: WorkDep, request: Request, user: WebUser, session: Session, form: WebForm, roles: list[str],
          person: Person | None) -> Response:
    try:
        data = read_person(session, form, roles, user.actor, person)
    except NotPermitted:
        return _refused(request)
    if data is None:
        return _form_page(request, session, user, form, set(roles), person, status=422)
    person_id = person.id if person else None
    try:
        saved = work.run(lambda uow: save_person(uow, data, person_id))
    except IntegrityError:  # the address was taken by someone saving at the same moment
        form.fail("email", "people.error.email_taken")
        return _form_page(request, session, user, form, set(roles), person, status=422)
    notice = "saved" if person else "added"
    return RedirectResponse(f"/people?notice={notice}&q={quote(saved.email, safe='')}", status_code=303)


@router.post("/people")
def add_person(work: WorkDep, request: Request, user: User, session: SessionDep,
               name: Annotated[str, Form()] = "", email: Annotated[str, Form()] = "",
               language: Annotated[str, Form()] = "", organisation: Annotated[str, Form()] = "",
               title: Annotated[str, Form()] = "", roles: Annotated[list[str] | None, Form()] = None) -> Response:
    """Add a person: an administrator anyone, a coordinator a signatory of their own organisation."""
    form = _submitted(name, email, language, organisation, title, "on")
    return _save(work, request, user, session, form, roles or [], None)


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}", message_id="error.not_found")
    return person


@router.get("/people/{person_id}")
def person_page(request: Request, person_id: int, user: User, session: SessionDep) -> Response:
    """Show a person's form with what is stored."""
    person = _person(session, person_id)
    try:
        check_may_manage(user.actor, person)
    except NotPermitted:
        return _refused(request)
    org = session.get(Organisation, person.organisation_id) if person.organisation_id else None
    form = WebForm({"name": person.name, "email": person.email, "language": person.language,
                    "organisation": organisation_label(org, user.lang), "title": person.title or "",
                    "active": "on" if person.active else ""})
    return _form_page(request, session, user, form, set(person.role_set), person)


@router.post("/people/{person_id}")
def edit_person(work: WorkDep, request: Request, person_id: int, user: User, session: SessionDep,
                name: Annotated[str, Form()] = "", email: Annotated[str, Form()] = "",
                language: Annotated[str, Form()] = "", organisation: Annotated[str, Form()] = "",
                title: Annotated[str, Form()] = "", active: Annotated[str, Form()] = "",
                roles: Annotated[list[str] | None, Form()] = None) -> Response:
    """Save the changes to a person."""
    person = _person(session, person_id)
    try:
        check_may_manage(user.actor, person)
    except NotPermitted:
        return _refused(request)
    form = _submitted(name, email, language, organisation, title, active)
    return _save(work, request, user, session, form, roles or [], person)
