"""The council-term review page of an agreement (611/2021 §14): start the term's review, record its outcome.

`/agreements/{id}/review` is where an emailed review reminder lands (`api/web/case_pages.py`). The outcome is one
of three: the parties confirm the agreement unchanged (the review's `confirm_unchanged`), revise its text (the
revise page, which runs the review's `revise` while a review is open) or terminate it with a reason and an end
date (the agreement's `terminate`, which cancels its reviews). Every button comes from the engine's answer to
"what may this person fire now" (`CaseReader.permitted`); a form posted without that permission is a 403 with
nothing written, and the services check again inside the locked transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.forms import URL
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routing import User, WebUser, today_of, web_router
from api.web.task_views import task_section
from api.web.views import AgreementView, agreement_view, require_permitted
from engine.errors import CaseNotFound, InvalidInput
from workflows.agreement import service as agreements
from workflows.agreement.schemas import TerminateIn
from workflows.review import service
from workflows.review.schemas import ConfirmIn, ReviewRead, ReviewStart
from workflows.review.terms import term_label, term_of

router = web_router()

NOTICES = {"started": "review.notice.started", "confirmed": "review.notice.confirmed",
           "terminated": "review.notice.terminated"}
FORMS = ("start", "confirm", "terminate")


@dataclass
class ReviewPage:
    """What the review page shows: the agreement, its reviews, the open one and what the viewer may do."""

    view: AgreementView
    reviews: list[ReviewRead]
    term: tuple[date, date]
    current: ReviewRead | None  # this council term's review, whatever its state
    open_review: ReviewRead | None  # the review whose outcome the viewer may record now
    finals: frozenset[str]  # the review states that end it (the definition's final states)
    may_start: bool
    may_terminate: bool
    may_revise: bool

    @property
    def term_label(self) -> str:
        """Return the current term as '2025–2029'."""
        return term_label(self.term)


def review_page_data(request: Request, session: Session, user: WebUser, agreement_id: int) -> ReviewPage:
    """Assemble the review page for a viewer (raises CaseNotFound when they may not see the agreement)."""
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    view = agreement_view(session, ctx.registry, user, agreement_id, now, user.lang)
    reviews = service.list_reviews(session, ctx.registry, agreement_id, user.actor)
    term = term_of(today_of(request))
    current = next((r for r in reviews if r.term_start == term[0]), None)
    open_review = next((r for r in reviews if {"confirm_unchanged", "revise"} & set(r.allowed_triggers)), None)
    finals = frozenset(ctx.registry.machine(service.REVIEW).definition.final_states)
    permitted = set(view.permitted)
    return ReviewPage(view, reviews, term, current, open_review, finals,
                      may_start="start_review" in permitted and current is None,
                      may_terminate="terminate" in permitted,
                      may_revise=open_review is not None and "revise" in open_review.allowed_triggers)


def show_review(request: Request, session: Session, user: WebUser, agreement_id: int, *, status: int = 200,
                form: WebForm | None = None, failed: str | None = None, notice: str | None = None) -> Response:
    """Render the review page, optionally with the form that failed (`failed` names it) and its errors."""
    data = review_page_data(request, session, user, agreement_id)
    task = task_section(request, session, user, agreement_id, data.view.permitted)
    return render(request, "agreement_review.html", user.lang, status=status, user=user, page=data, task=task,
                  view=data.view, form=form or WebForm({}), empty_form=WebForm({}), failed=failed,
                  notice=NOTICES.get(notice or ""), today=today_of(request))



@router.get("/agreements/{agreement_id}/review")
def review_page(request: Request, agreement_id: int, user: User, session: SessionDep,
                notice: str | None = None) -> Response:
    """Show the agreement's council-term reviews and the forms to start one and record its outcome."""
    return show_review(request, session, user, agreement_id, notice=notice)


@router.post("/agreements/{agreement_id}/review/start")
def start_review(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
                 deadline: Annotated[str, Form()] = "") -> Response:
    """Open this council term's review now, with an optional deadline earlier than the term's end."""
    require_permitted(request, session, user, agreement_id, "start_review")
    form = WebForm({"deadline": deadline})
    chosen = form.date("deadline", required=False)
    term = term_of(today_of(request))
    if chosen is not None and not today_of(request) <= chosen <= term[1]:
        form.fail("deadline", "review.error.deadline")
    if form.errors:
        return show_review(request, session, user, agreement_id, status=422, form=form, failed="start")
    work.run(lambda uow: service.start_now(uow, agreement_id, ReviewStart(deadline=chosen), user.actor))
    return RedirectResponse(f"/agreements/{agreement_id}/review?notice=started", status_code=303)


@router.post("/agreements/{agreement_id}/review/confirm")
def confirm_review(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
                   review_id: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                   minutes_url: Annotated[str, Form()] = "") -> Response:
    """Record that the parties confirmed the agreement unchanged for this term."""
    review = _review_of(session, request, agreement_id, review_id)
    require_permitted(request, session, user, review, "confirm_unchanged")
    form = WebForm({"note": note, "minutes_url": minutes_url})
    text = form.text("note", max_length=4000, required=False)
    url = form.get("minutes_url")
    if url and not URL.match(url):
        form.fail("minutes_url", "decision.error.url")
    if form.errors:
        return show_review(request, session, user, agreement_id, status=422, form=form, failed="confirm")
    body = ConfirmIn.model_validate({"note": text, "minutes_url": url or None})
    work.run(lambda uow: service.confirm_unchanged(uow, review, body, user.actor))
    return RedirectResponse(f"/agreements/{agreement_id}/review?notice=confirmed", status_code=303)


@router.post("/agreements/{agreement_id}/review/terminate")
def terminate(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
              reason: Annotated[str, Form()] = "", end_date: Annotated[str, Form()] = "") -> Response:
    """End the agreement with a reason and an end date; its open and scheduled reviews are cancelled."""
    require_permitted(request, session, user, agreement_id, "terminate")
    form = WebForm({"reason": reason, "end_date": end_date})
    text = form.text("reason", max_length=2000)
    ends = form.date("end_date")
    if ends is not None and ends < today_of(request):
        form.fail("end_date", "review.error.end_date_past")
    if form.errors or text is None or ends is None:
        return show_review(request, session, user, agreement_id, status=422, form=form, failed="terminate")
    try:
        work.run(lambda uow: agreements.terminate(uow, agreement_id, TerminateIn(reason=text, end_date=ends),
                                                  user.actor))
    except InvalidInput as exc:
        form.fail(exc.field if exc.field in ("reason", "end_date") else "reason", "form.error.invalid")
        return show_review(request, session, user, agreement_id, status=422, form=form, failed="terminate")
    return RedirectResponse(f"/agreements/{agreement_id}/review?notice=terminated", status_code=303)


def _review_of(session: Session, request: Request, agreement_id: int, review_id: str) -> int:
    """Return the id of a review of this agreement named by a form (404 for anything else)."""
    reviews = service.list_reviews(session, request.app.state.ctx.registry, agreement_id)
    found = next((r.id for r in reviews if review_id.isdigit() and r.id == int(review_id)), None)
    if found is None:
        raise CaseNotFound(f"agreement {agreement_id} has no review {review_id!r}")
    return found
