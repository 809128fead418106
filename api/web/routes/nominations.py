"""Coordinators' nomination pages: create a request from a form, and follow it (proposals, decision, members)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.access import readable_case
from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.case_forms import NOMINATION_FIELDS, REGION_KINDS, NominationFormIn, read_nomination_form, regions
from api.web.forms import Form as WebForm
from api.web.queries import org_name
from api.web.render import render
from api.web.routes.agreements import today_of
from api.web.routes.dashboards import require_coordinator
from api.web.routing import User, WebUser, web_router
from engine.errors import CaseNotFound, InvalidInput, NotFound
from engine.models import Organisation
from workflows.nomination import service
from workflows.nomination.read import read_nomination

router = web_router()


def _new_page(request: Request, session: Session, user: WebUser, form: WebForm, status: int = 200) -> Response:
    return render(request, "nomination_new.html", user.lang, status=status, user=user, form=form,
                  regions=regions(session, user.lang), kinds=REGION_KINDS)


@router.get("/nominations/new")
def new_nomination_page(request: Request, user: User, session: SessionDep) -> Response:
    """Show the form for a new nomination request."""
    require_coordinator(user)
    form = WebForm({"seats": "1", "deputies": "1", "requester_language": "fi", "region_kinds": "municipality"})
    return _new_page(request, session, user, form)


@router.post("/nominations/new")
def create_nomination(work: WorkDep, request: Request, user: User, session: SessionDep,
                      posted: Annotated[NominationFormIn, Form()]) -> Response:
    """Create the request: every asked organisation gets a proposal case and its contacts an email."""
    require_coordinator(user)
    form = posted.form()
    body = read_nomination_form(session, form, today_of(request), user.id)
    if body is None:
        return _new_page(request, session, user, form, status=422)
    try:
        case = work.run(lambda uow: service.create_nomination(uow, body, user.actor))
    except InvalidInput as exc:
        field = exc.field.split("[")[0]
        refused = refusal_text(exc, user.lang, request.app.state.ctx.registry)
        form.fail(NOMINATION_FIELDS.get(field, "organisations"), f"nomination.error.refused|0|{refused}")
        return _new_page(request, session, user, form, status=422)
    return RedirectResponse(f"/nominations/{case.id}?notice=created", status_code=303)


@router.get("/nominations/{nomination_id}")
def nomination_page(request: Request, nomination_id: int, user: User, session: SessionDep,
                    notice: str | None = None) -> Response:
    """Follow a request: proposals by organisation, the decision with its shares, the members serving."""
    readable_case(session, user.actor, nomination_id)
    try:
        data = read_nomination(session, request.app.state.ctx.registry, nomination_id, user.actor)
    except NotFound:
        raise CaseNotFound(f"no nomination with id {nomination_id}") from None
    keys = {p.organisation for p in data.proposals}
    names = {o.key: org_name(o, user.lang) for o in session.execute(
        select(Organisation).where(col(Organisation.key).in_(keys))).scalars()}
    return render(request, "nomination.html", user.lang, user=user, n=data, names=names,
                  notice="created" if notice == "created" else None)
