"""Substitute pages: name a varahenkilö for a period, see who substitutes for whom, end a substitution early."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.delegation import create_delegation, delegations_of, revoke_delegation
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routing import User, WebUser, today_of, web_router
from engine.errors import InvalidInput

router = web_router()


def _page(request: Request, session: Session, user: WebUser, form: WebForm, status: int = 200,
          notice: str | None = None) -> Response:
    mine, theirs = delegations_of(session, user.id)
    return render(request, "substitutes.html", user.lang, status=status, user=user, form=form, mine=mine,
                  theirs=theirs, today=today_of(request), notice=notice)


@router.get("/substitutes")
def substitutes_page(request: Request, user: User, session: SessionDep, notice: str | None = None) -> Response:
    """List substitutions both ways and offer a form to name a substitute."""
    today = today_of(request)
    form = WebForm({"starts_on": f"{today.day}.{today.month}.{today.year}", "ends_on": ""})
    return _page(request, session, user, form, notice=notice if notice in ("added", "revoked") else None)


@router.post("/substitutes")
def add_substitute(work: WorkDep, request: Request, user: User, session: SessionDep, substitute: Annotated[str,
                   Form()] = "",
                   starts_on: Annotated[str, Form()] = "", ends_on: Annotated[str, Form()] = "",
                   note: Annotated[str, Form()] = "") -> Response:
    """Let another person act for the signed-in person during a period."""
    form = WebForm(dict(substitute=substitute, starts_on=starts_on, ends_on=ends_on, note=note))
    today = today_of(request)
    start, end = form.date("starts_on"), form.date("ends_on")
    form.text("substitute", max_length=320)
    form.text("note", max_length=500, required=False)
    if form.errors or start is None or end is None:
        return _page(request, session, user, form, status=422)
    ctx = request.app.state.ctx
    try:
        work.run(lambda uow: create_delegation(
            uow.session, principal=user.person, substitute_email=form.get("substitute"), starts_on=start,
            ends_on=end, note=form.get("note"), today=today, now=ctx.clock.now()))
    except InvalidInput as exc:
        specific = exc.message_id if (exc.message_id or "").startswith("substitute.error.") else None
        form.fail(exc.field, specific or f"substitute.error.{exc.field}")
        return _page(request, session, user, form, status=422)
    return RedirectResponse("/substitutes?notice=added", status_code=303)


@router.post("/substitutes/{delegation_id}/revoke")
def revoke(session: SessionDep, request: Request, delegation_id: int, user: User) -> Response:
    """End a substitution now (its principal or its substitute may)."""
    ctx = request.app.state.ctx
    revoke_delegation(session, delegation_id, user.id, ctx.clock.now())
    session.flush()
    return RedirectResponse("/substitutes?notice=revoked", status_code=303)
