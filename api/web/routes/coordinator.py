"""Coordinator pages: create an agreement from a form, circulate it, revise its text, send reminders now."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.access import readable_case
from api.deps import SessionDep, WorkDep
from api.web.forms import Form as WebForm
from api.web.forms import read_agreement_form, region_parties
from api.web.mail import REMIND_AGAIN_AFTER, remind_now
from api.web.render import render, render_markdown
from api.web.routing import User, WebUser, today_of, web_router
from api.web.views import agreement_view
from engine.errors import InvalidInput, NotPermitted
from engine.models import Organisation
from engine.service import UnitOfWork
from workflows.agreement import service
from workflows.agreement.schemas import DocumentIn
from workflows.review import service as reviews
from workflows.review.schemas import ReviseIn

router = web_router()


def _coordinator(user: WebUser) -> None:
    if not user.coordinates:
        raise NotPermitted("this page is for coordinators and administrators")


def _regions(session: Session, lang: str) -> list[tuple[str, str]]:
    rows = session.execute(select(Organisation).where(col(Organisation.kind) == "region",
                                                      col(Organisation.active).is_(True))
                           .order_by(col(Organisation.code))).scalars().all()
    return [(r.code, (r.name_sv or r.name_fi) if lang == "sv" else r.name_fi) for r in rows]


def _new_page(request: Request, session: Session, user: WebUser, form: WebForm, status: int = 200) -> Response:
    return render(request, "agreement_new.html", user.lang, status=status, user=user, form=form,
                  regions=_regions(session, user.lang), today=today_of(request))


@router.get("/agreements/new")
def new_agreement_page(request: Request, user: User, session: SessionDep) -> Response:
    """Show the form for a new agreement."""
    _coordinator(user)
    return _new_page(request, session, user, WebForm({"required_signatures": "1"}))


@router.post("/agreements/new")
def create_agreement(work: WorkDep, request: Request, user: User, session: SessionDep, title: Annotated[str,
                     Form()] = "",
                     deadline: Annotated[str, Form()] = "", document: Annotated[str, Form()] = "",
                     parties: Annotated[str, Form()] = "", required_signatures: Annotated[str, Form()] = "1",
                     region: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "create") -> Response:
    """Create the agreement in draft (or, with action=add_region, fill in a region's parties and show the form)."""
    _coordinator(user)
    form = WebForm(dict(title=title, deadline=deadline, document=document, parties=parties,
                        required_signatures=required_signatures, region=region))
    if action == "add_region":
        keys = region_parties(session, region) if region else []
        if not keys:
            form.fail("region", "agreement.error.region")
            return _new_page(request, session, user, form, status=422)
        known = [line.strip() for line in parties.splitlines() if line.strip()]
        form.values["parties"] = "\n".join(known + [k for k in keys if k not in known])
        return _new_page(request, session, user, form)
    body = read_agreement_form(session, form, today_of(request), user.id)
    if body is None:
        return _new_page(request, session, user, form, status=422)
    case = work.run(lambda uow: service.create_agreement(uow, body, user.actor))
    return RedirectResponse(f"/agreements/{case.id}?notice=created", status_code=303)


@router.post("/agreements/{agreement_id}/circulate")
def circulate(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
              version: Annotated[str, Form()] = "") -> Response:
    """Send the draft to the parties (refused if the agreement changed since the page was shown)."""
    readable_case(session, user.actor, agreement_id)
    expected = int(version) if version.isdigit() else None
    work.run(lambda uow: service.circulate(uow, agreement_id, user.actor, expected))
    return RedirectResponse(f"/agreements/{agreement_id}?notice=circulated", status_code=303)


def _revise_page(request: Request, session: Session, user: WebUser, agreement_id: int, form: WebForm,
                 status: int = 200) -> Response:
    view = agreement_view(session, request.app.state.ctx.registry, user, agreement_id,
                          request.app.state.ctx.clock.now(), user.lang)
    if not view.coordinates:
        raise NotPermitted("only the agreement's coordinator or an administrator revises its text")
    if "revise" not in view.permitted:
        # in force (or ended): the text is not edited here; a clear page says why and where to go instead
        return render(request, "agreement_revise_closed.html", user.lang, user=user, view=view,
                      review_possible=bool({"start_review", "terminate"} & set(view.permitted)))
    form.values.setdefault("text", view.agreement.document)
    form.values.setdefault("version", str(view.agreement.version))
    party = request.app.state.ctx.registry.machine("agreement_party").definition
    again = [p for p in view.parties if party.has_tag(p.party.state, "acted")]  # voided and asked again
    pending = [p for p in view.parties if not party.has_tag(p.party.state, "acted")]
    return render(request, "agreement_revise.html", user.lang, status=status, user=user, view=view, form=form,
                  again=again, pending=pending, document=render_markdown(view.agreement.document))


@router.get("/agreements/{agreement_id}/revise")
def revise_page(request: Request, agreement_id: int, user: User, session: SessionDep) -> Response:
    """Show the text for editing and who will have to approve again."""
    readable_case(session, user.actor, agreement_id)
    return _revise_page(request, session, user, agreement_id, WebForm({}))


@router.post("/agreements/{agreement_id}/revise")
def revise(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep, text: Annotated[str,
           Form()] = "",
           note: Annotated[str, Form()] = "", version: Annotated[str, Form()] = "") -> Response:
    """Store the new text as the next version; every party is asked to decide and sign again."""
    readable_case(session, user.actor, agreement_id)
    form = WebForm(dict(text=text, note=note, version=version))
    body_text = form.text("text", max_length=500_000)
    form.text("note", max_length=2000, required=False)
    if body_text is None or form.errors:
        return _revise_page(request, session, user, agreement_id, form, status=422)
    expected = int(version) if version.isdigit() else None

    def revise_text(uow: UnitOfWork) -> None:
        # while a council-term review is open, the revision is its outcome: the review's `revise` ends it
        for review in reviews.reviews_of(uow, agreement_id):
            if "revise" in uow.permitted_triggers(review.id, user.actor):
                reviews.revise(uow, review.id, ReviseIn(text=text, note=note.strip() or None), user.actor)
                return
        service.revise(uow, agreement_id, DocumentIn(text=text, note=note.strip() or None), user.actor, expected)

    try:
        work.run(revise_text)
    except InvalidInput as exc:
        unchanged = exc.message_id == "agreement.error.text_unchanged"
        form.fail(exc.field, "agreement.error.unchanged" if unchanged else
                  "form.error.required" if exc.message_id == "agreement.error.text_empty" else "form.error.invalid")
        return _revise_page(request, session, user, agreement_id, form, status=422)
    return RedirectResponse(f"/agreements/{agreement_id}?notice=revised", status_code=303)


@router.post("/agreements/{agreement_id}/remind")
def remind(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
           party_case_id: Annotated[str, Form()] = "") -> Response:
    """Email the pending parties (or one of them) a reminder with a fresh sign-in link, now."""
    readable_case(session, user.actor, agreement_id)
    party = int(party_case_id) if party_case_id.isdigit() else None
    done = work.run(lambda uow: remind_now(uow, agreement_id, user.actor, party))
    if not done.queued and done.skipped:  # everybody was reminded recently: say so instead of "0 reminded"
        hours = int(REMIND_AGAIN_AFTER.total_seconds() // 3600)
        return RedirectResponse(f"/agreements/{agreement_id}?notice=reminded_none&count={done.skipped}"
                                f"&hours={hours}", status_code=303)
    return RedirectResponse(f"/agreements/{agreement_id}?notice=reminded&count={done.queued}", status_code=303)
