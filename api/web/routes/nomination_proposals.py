"""An asked organisation's proposal page: candidates per seat (a woman and a man, or an exception), a draft, submit.

The emailed link lands on `/cases/{proposal case}`, which redirects here (`api.web.case_pages`). Only the
organisation's own people, the request's coordinator and administrators may open it; anyone else gets a 403
page and nothing is written. What the viewer may do comes from the engine (`CaseReader.permitted`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Form, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.forms import Form as WebForm
from api.web.nomination_forms import (
    positions,
    proposal_field,
    proposal_labels,
    proposal_values,
    read_proposal,
    reason_key,
    slots,
)
from api.web.nomination_views import proposal_of
from api.web.render import render
from api.web.routing import User, WebUser, web_router
from engine.calendar import effective_deadline
from engine.errors import Conflict, InvalidInput
from engine.models import Case
from engine.permissions import CaseReader
from engine.service import UnitOfWork
from workflows.nomination import service
from workflows.nomination.models import Candidate, ProposalException
from workflows.nomination.schemas import WaiveIn

router = web_router()
NOTICES = {"proposed", "draft", "waived", "unchanged", "changed"}


class ProposalForm(BaseModel):
    """The proposal form as posted: the button, the version it was shown with, and every row's fields."""

    model_config = ConfigDict(extra="allow")
    action: str = "submit"
    version: str = ""

    def form(self) -> WebForm:
        """Return the row fields (s<seat>-<position>-<n>-<part>, s<seat>-<position>-reason) as a web form."""
        extra = self.model_extra or {}
        return WebForm({k: str(v)[:4000] for k, v in extra.items() if k.startswith("s") and "-" in k})


def _stored(session: Session, child: Case) -> tuple[list[Candidate], list[dict[str, object]]]:
    version = int((child.data or {}).get("proposal_version", 0))
    candidates = list(session.execute(select(Candidate).where(
        col(Candidate.proposal_case_id) == child.id, col(Candidate.superseded_at).is_(None))
        .order_by(col(Candidate.seat), col(Candidate.position).desc(), col(Candidate.id))).scalars())
    exceptions: list[dict[str, object]] = [
        {"seat": e.seat, "position": e.position, "reason": e.reason} for e in session.execute(
            select(ProposalException).where(col(ProposalException.proposal_case_id) == child.id,
                                            col(ProposalException.proposal_version) == version)).scalars()]
    return candidates, exceptions


def show_proposal(request: Request, session: Session, user: WebUser, parent: Case, child: Case, name: str, *,
                  form: WebForm | None = None, status: int = 200, notice: str | None = None,
                  problem: str | None = None) -> Response:
    """Render the proposal page, optionally with a form that failed and its errors kept."""
    ctx = request.app.state.ctx
    candidates, exceptions = _stored(session, child)
    data = child.data or {}
    if form is None:
        form = WebForm(dict(data.get("draft") or proposal_values(candidates, exceptions)))
    seats = parent.data["seats"]
    permitted = CaseReader(ctx.registry, session, ctx.clock.now()).permitted(child.id or 0, user.actor)
    definition = ctx.registry.machine(child.workflow, child.workflow_version).definition
    return render(request, "nomination_proposal.html", user.lang, status=status, user=user, parent=parent,
                  child=child, organisation=name, form=form, rows=slots(seats, form.values), seats=seats,
                  positions=positions(seats), reason_key=reason_key, labels=proposal_labels(user.lang, seats,
                                                                                            form.values),
                  candidates=candidates, exceptions=exceptions, permitted=permitted, problem=problem,
                  deadline=effective_deadline(parent.deadline) if parent.deadline else None,
                  version=int(data.get("proposal_version", 0)),
                  term_start=date.fromisoformat(parent.data["term_start"]),
                  term_end=date.fromisoformat(parent.data["term_end"]), draft_saved_at=data.get("draft_saved_at"),
                  answered=definition.has_tag(child.state, "deadline_met"),
                  notice=notice if notice in NOTICES else None)


@router.get("/nominations/{nomination_id}/proposals/{proposal_id}")
def proposal_page(request: Request, nomination_id: int, proposal_id: int, user: User, session: SessionDep,
                  notice: str | None = None) -> Response:
    """Show the organisation's proposal form: its current proposal (or draft) to change until the deadline."""
    parent, child, name = proposal_of(session, user, nomination_id, proposal_id)
    return show_proposal(request, session, user, parent, child, name, notice=notice)


@router.post("/nominations/{nomination_id}/proposals/{proposal_id}")
def submit_proposal(work: WorkDep, request: Request, nomination_id: int, proposal_id: int, user: User,
                    session: SessionDep, posted: Annotated[ProposalForm, Form()]) -> Response:
    """Save the form as a draft, or check it and submit it as the organisation's proposal."""
    parent, child, name = proposal_of(session, user, nomination_id, proposal_id)
    key = str(child.data["organisation_key"])
    form = posted.form()
    here = f"/nominations/{nomination_id}/proposals/{proposal_id}"
    if posted.action == "draft":
        work.run(lambda uow: service.save_draft(uow, nomination_id, key, form.values, user.actor))
        return RedirectResponse(f"{here}?notice=draft", status_code=303)
    data, prefixes = read_proposal(form, parent.data["seats"], user.lang)
    if data is None:
        return show_proposal(request, session, user, parent, child, name, form=form, status=422)
    seen = int(posted.version) if posted.version.isdigit() else None
    registry = request.app.state.ctx.registry
    try:
        rows = work.run(lambda uow: service.propose(uow, nomination_id, key, data, user.actor, seen))
    except InvalidInput as exc:
        field = proposal_field(exc.field, prefixes, parent.data["seats"])
        form.fail(field, f"nomination.form.message|0|{refusal_text(exc, user.lang, registry)}")
        return show_proposal(request, session, user, parent, child, name, form=form, status=422)
    except Conflict as exc:
        if exc.message_id != "nomination.error.proposal_changed":
            raise
        return show_proposal(request, session, user, parent, child, name, form=form, status=409,
                             problem=refusal_text(exc, user.lang, registry))
    unchanged = seen is not None and seen != int(child.data.get("proposal_version", 0)) and rows
    return RedirectResponse(f"{here}?notice={'unchanged' if unchanged else 'proposed'}", status_code=303)


@router.post("/nominations/{nomination_id}/proposals/{proposal_id}/waive")
def waive_proposal(work: WorkDep, request: Request, nomination_id: int, proposal_id: int, user: User,
                   session: SessionDep, waive_reason: Annotated[str, Form()] = "",
                   version: Annotated[str, Form()] = "") -> Response:
    """Say the organisation proposes nobody this time (its earlier candidates are withdrawn).

    The form carries the proposal case's version: sent twice (or after a colleague answered), nothing is written
    and the page shows the answer as it now is.
    """
    parent, child, name = proposal_of(session, user, nomination_id, proposal_id)
    form = WebForm({"waive_reason": waive_reason})
    text = form.text("waive_reason", max_length=2000, required=False)
    if form.errors:
        return show_proposal(request, session, user, parent, child, name, form=form, status=422)
    key = str(child.data["organisation_key"])
    here = f"/nominations/{nomination_id}/proposals/{proposal_id}"

    def waive(uow: UnitOfWork) -> None:
        current = uow.case(proposal_id)
        if version.isdigit() and int(version) != current.version:
            raise Conflict(f"proposal {proposal_id} is at version {current.version}, not {version}",
                           message_id="error.stale_version", params={"version": current.version,
                                                                     "expected": version})
        service.waive(uow, nomination_id, key, WaiveIn(reason=text), user.actor)
    try:
        work.run(waive)
    except Conflict as exc:
        if exc.message_id != "error.stale_version":
            raise
        return RedirectResponse(f"{here}?notice=changed", status_code=303)
    return RedirectResponse(f"{here}?notice=waived", status_code=303)
