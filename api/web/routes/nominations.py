"""The nomination request pages: create a request, follow it, close it, decide, send the letter, replace members.

Who sees what is decided in `api.web.nomination_views`; the buttons come from the engine's permitted triggers.
Every form carries the request's version: a second submit of the same form (or one made after someone else
changed the request) writes nothing and leads back to the page, which shows what the request now is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Form, Request
from markupsafe import Markup
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.case_forms import (
    NOMINATION_FIELDS,
    REGION_KINDS,
    NominationFormIn,
    organisation_key,
    read_nomination_form,
    regions,
)
from api.web.forms import Form as WebForm
from api.web.nomination_forms import (
    REPLACEMENT_FIELDS,
    decision_field,
    decision_labels,
    read_decision_form,
    read_replacement,
    replacement_labels,
)
from api.web.nomination_views import candidates_of, coordinates, names_of, nomination_of, nomination_view
from api.web.render import render
from api.web.routes import nomination_proposals
from api.web.routes.dashboards import require_coordinator
from api.web.routing import User, WebUser, today_of, web_router
from engine.errors import Conflict, InvalidInput, NotPermitted
from engine.models import Case
from engine.service import UnitOfWork
from workflows.nomination import appointments, service
from workflows.nomination.letter import organisation_names, render_letter
from workflows.nomination.models import Appointment, NominationDecision, NominationLetter

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


NOTICES = {"created", "closed", "decided", "sent", "replaced", "changed"}


@router.get("/nominations/{nomination_id}")
def nomination_page(request: Request, nomination_id: int, user: User, session: SessionDep,
                    notice: str | None = None) -> Response:
    """Follow a request: who has answered, the decision with its shares, the members and their history."""
    case = nomination_of(session, user, nomination_id)
    ctx = request.app.state.ctx
    view = nomination_view(session, ctx.registry, user, case, ctx.clock.now())
    return render(request, "nomination.html", user.lang, user=user, view=view, n=view.n,
                  notice=notice if notice in NOTICES else None)


def _coordinated(session: Session, user: WebUser, nomination_id: int) -> Case:
    case = nomination_of(session, user, nomination_id)
    if not coordinates(user, case):
        raise NotPermitted(f"person {user.id} does not coordinate nomination {nomination_id}",
                           message_id="nomination.error.coordinator_only", params={"group": case.title})
    return case


def _once(work: WorkDep, nomination_id: int, version: str, act: Callable[[UnitOfWork], Any]) -> Response | None:
    """Run an act on the request if it is still at the version the form showed; else lead back to the page."""
    def run(uow: UnitOfWork) -> Any:
        case = service.nomination_case(uow, nomination_id)
        if not version.isdigit() or int(version) != case.version:
            raise Conflict(f"nomination {nomination_id} is at version {case.version}, not {version}",
                           message_id="error.stale_version", params={"version": case.version,
                                                                     "expected": version})
        return act(uow)
    try:
        work.run(run)
    except Conflict as exc:
        if exc.message_id != "error.stale_version":
            raise
        return RedirectResponse(f"/nominations/{nomination_id}?notice=changed", status_code=303)
    return None


@router.post("/nominations/{nomination_id}/close")
def close_proposals(work: WorkDep, nomination_id: int, user: User, session: SessionDep,
                    version: Annotated[str, Form()] = "") -> Response:
    """Close the request for proposals before its deadline; whoever has not answered has lapsed."""
    _coordinated(session, user, nomination_id)
    back = _once(work, nomination_id, version, lambda uow: service.close_proposals(uow, nomination_id, user.actor))
    return back or RedirectResponse(f"/nominations/{nomination_id}?notice=closed", status_code=303)


def _decision_page(request: Request, session: Session, user: WebUser, case: Case, form: WebForm,
                   status: int = 200) -> Response:
    ctx = request.app.state.ctx
    candidates = candidates_of(session, case.id or 0)
    names = names_of(session, {c.organisation_key for c in candidates}, user.lang)
    permitted = nomination_view(session, ctx.registry, user, case, ctx.clock.now()).permitted
    return render(request, "nomination_decide.html", user.lang, status=status, user=user, case=case, form=form,
                  seats=case.data["seats"], candidates=candidates, names=names, permitted=permitted,
                  labels=decision_labels(user.lang, case.data["seats"]))


@router.get("/nominations/{nomination_id}/decision")
def decision_page(request: Request, nomination_id: int, user: User, session: SessionDep) -> Response:
    """Show the decision form: the meeting, and a member and a deputy per seat from the proposed candidates."""
    case = _coordinated(session, user, nomination_id)
    return _decision_page(request, session, user, case, WebForm({"body": "Maakuntajohtajakokous"}))


@router.post("/nominations/{nomination_id}/decision")
def record_decision(work: WorkDep, request: Request, nomination_id: int, user: User, session: SessionDep,
                    posted: Annotated[nomination_proposals.ProposalForm, Form()]) -> Response:
    """Record the meeting's decision; below 40 % of women or men needs a written justification (§4 a)."""
    case = _coordinated(session, user, nomination_id)
    extra = posted.model_extra or {}
    form = WebForm({k: str(v)[:4000] for k, v in extra.items() if k != "csrf_token"})
    data = read_decision_form(form, case.data["seats"], today_of(request))
    if data is None:
        return _decision_page(request, session, user, case, form, status=422)
    try:
        back = _once(work, nomination_id, posted.version,
                     lambda uow: appointments.decide(uow, nomination_id, data, user.actor))
    except InvalidInput as exc:
        text = refusal_text(exc, user.lang, request.app.state.ctx.registry)
        form.fail(decision_field(exc.field, data), f"nomination.form.message|0|{text}")
        return _decision_page(request, session, user, case, form, status=422)
    return back or RedirectResponse(f"/nominations/{nomination_id}?notice=decided", status_code=303)


@router.get("/nominations/{nomination_id}/letter")
def letter_page(request: Request, nomination_id: int, user: User, session: SessionDep) -> Response:
    """Show the nomination letter: as sent, or a preview of what will be sent (with the button to send it)."""
    case = nomination_of(session, user, nomination_id)
    ctx = request.app.state.ctx
    view = nomination_view(session, ctx.registry, user, case, ctx.clock.now())
    if not (view.coordinates or view.requester):  # the letter names the nominees' addresses: not for every reader
        raise NotPermitted(f"person {user.id} may not read the letter of nomination {nomination_id}",
                           message_id="nomination.error.letter_for_requester", params={"group": case.title})
    sent = session.get(NominationLetter, case.data.get("letter_id") or 0)
    if sent is not None:
        subject, html, lang, to, cc = sent.subject, sent.html, sent.language, sent.to_address, sent.cc
    else:
        decision = session.get(NominationDecision, case.data.get("decision_id") or 0)
        if decision is None or not view.coordinates:
            raise NotPermitted("this request has no letter yet", message_id="nomination.error.no_letter",
                               params={"group": case.title})
        requester = case.data["requester"]
        lang = requester.get("language", "fi")
        held = [a for a in session.execute(select(Appointment).where(
            col(Appointment.case_id) == nomination_id, col(Appointment.ends_on).is_(None))
            .order_by(col(Appointment.seat))).scalars()]
        names = organisation_names(session, [a.organisation_key for a in held], lang)
        subject, _text, html = render_letter(case.data, appointments.citation(decision), decision, held, lang,
                                             names)
        to, cc = requester["email"], ",".join(sorted({a.email for a in held if a.email}))
    # the letter's body, its headings one level under the page's own
    body = html.split("<body>", 1)[-1].split("</body>", 1)[0].replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return render(request, "nomination_letter.html", user.lang, user=user, view=view, n=view.n, case=case,
                  subject=subject, letter=Markup(body), letter_lang=lang,  # noqa: S704 - our own autoescaped template
                  to=to, cc=[a for a in cc.split(",") if a], sent=sent)


@router.post("/nominations/{nomination_id}/communicate")
def send_letter(work: WorkDep, nomination_id: int, user: User, session: SessionDep,
                version: Annotated[str, Form()] = "") -> Response:
    """Send the letter to the requester, in its language, with copies to the nominees (once)."""
    _coordinated(session, user, nomination_id)
    back = _once(work, nomination_id, version, lambda uow: appointments.communicate(uow, nomination_id, user.actor))
    return back or RedirectResponse(f"/nominations/{nomination_id}?notice=sent", status_code=303)


def _replacement_page(request: Request, session: Session, user: WebUser, case: Case, form: WebForm,
                      status: int = 200) -> Response:
    ctx = request.app.state.ctx
    view = nomination_view(session, ctx.registry, user, case, ctx.clock.now())
    holding = set(session.execute(select(col(Appointment.candidate_id)).where(
        col(Appointment.case_id) == case.id, col(Appointment.ends_on).is_(None))).scalars())
    candidates = [c for c in candidates_of(session, case.id or 0) if c.id not in holding]
    return render(request, "nomination_replace.html", user.lang, status=status, user=user, view=view, n=view.n,
                  case=case, form=form, candidates=candidates, labels=replacement_labels(user.lang))


@router.get("/nominations/{nomination_id}/replacements")
def replacement_page(request: Request, nomination_id: int, user: User, session: SessionDep) -> Response:
    """Show the form for a mid-term change of a member or deputy (jäsenmuutos), with the history so far."""
    case = _coordinated(session, user, nomination_id)
    return _replacement_page(request, session, user, case, WebForm({}))


@router.post("/nominations/{nomination_id}/replacements")
def replace_member(work: WorkDep, request: Request, nomination_id: int, user: User, session: SessionDep,
                   posted: Annotated[nomination_proposals.ProposalForm, Form()]) -> Response:
    """Replace a seat's member or deputy from a date; the previous appointment stays in the history."""
    case = _coordinated(session, user, nomination_id)
    extra = posted.model_extra or {}
    form = WebForm({k: str(v)[:4000] for k, v in extra.items() if k != "csrf_token"})
    ctx = request.app.state.ctx
    view = nomination_view(session, ctx.registry, user, case, ctx.clock.now())
    current = {(h.appointment.seat, h.appointment.position) for h in view.current}

    def organisation(text: str) -> str | None:
        key, found = organisation_key(session, text)
        if key is None:
            form.fail("organisation", f"agreement.error.party_{'unknown' if not found else 'ambiguous'}|1|{text}")
        return key

    data = read_replacement(form, current, organisation)
    if data is None:
        return _replacement_page(request, session, user, case, form, status=422)
    try:
        back = _once(work, nomination_id, posted.version,
                     lambda uow: appointments.replace(uow, nomination_id, data, user.actor))
    except InvalidInput as exc:
        text = refusal_text(exc, user.lang, ctx.registry)
        form.fail(REPLACEMENT_FIELDS.get(exc.field, "slot"), f"nomination.form.message|0|{text}")
        return _replacement_page(request, session, user, case, form, status=422)
    return back or RedirectResponse(f"/nominations/{nomination_id}?notice=replaced", status_code=303)


router.include_router(nomination_proposals.router)
