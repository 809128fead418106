"""The finality page of an agreement: each party's decision, when it is final, and its claims for rectification.

`/agreements/{id}/finality` shows, for every party the viewer may read, the minutes' publication date, the deemed
notification, the last day for a claim for rectification and the day the decision is final (Local Government Act
410/2015; workflows/agreement/finality.py), with the claims recorded against it. The forms on it (the publication
date, a new claim, a claim's outcome) are shown only where the engine lets the viewer fire the step
(`CaseReader.permitted`); a form that fails comes back with 422 and what was typed, and the services check again
inside the locked transaction. The coordinator's weekly claim_pending reminder links here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routing import User, WebUser, today_of, web_router
from api.web.views import AgreementView, PartyView, agreement_view, require_permitted
from engine.errors import NotPermitted
from engine.permissions import CaseReader
from workflows.agreement import claims
from workflows.agreement.schemas import ClaimIn, ClaimOutcomeIn, PublicationIn

router = web_router()
NOTICES = {"published", "claimed", "decided"}


@dataclass
class PartyFinality:
    """One party on the finality page, and what the viewer may do for it."""

    party: PartyView
    may_publish: bool
    may_claim: bool
    may_decide: bool


@dataclass
class FinalityPage:
    """The agreement and its parties' finality."""

    view: AgreementView
    parties: list[PartyFinality] = field(default_factory=list)


def finality_page(request: Request, session: Session, user: WebUser, agreement_id: int) -> FinalityPage:
    """Assemble the page (raises CaseNotFound when the viewer may not read the agreement)."""
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    view = agreement_view(session, ctx.registry, user, agreement_id, now, user.lang)
    reader = CaseReader(ctx.registry, session, now)
    out = []
    for p in view.parties:
        permitted = set(reader.permitted(p.party.case_id, user.actor))
        out.append(PartyFinality(p, "record_publication" in permitted, "record_claim" in permitted,
                                 bool({"uphold_claim", "settle_claim"} & permitted)))
    return FinalityPage(view, out)


def show(request: Request, session: Session, user: WebUser, agreement_id: int, *, status: int = 200,
         form: WebForm | None = None, failed: str | None = None, notice: str | None = None) -> Response:
    """Render the page, optionally with the form that failed (`failed`: 'publication:<party>', 'claim:<party>' or
    'outcome:<claim id>') and its errors."""
    page = finality_page(request, session, user, agreement_id)
    return render(request, "agreement_finality.html", user.lang, status=status, user=user, page=page,
                  view=page.view, form=form or WebForm({}), empty_form=WebForm({}), failed=failed,
                  notice=notice if notice in NOTICES else None, today=today_of(request))



def _party_case(page: FinalityPage, key: str) -> int:
    for p in page.parties:
        if p.party.party.organisation == key:
            return p.party.party.case_id
    raise NotPermitted(f"{key!r} is not a party you may act for here", action="finality")


@router.get("/agreements/{agreement_id}/finality")
def page(request: Request, agreement_id: int, user: User, session: SessionDep,
         notice: str | None = None) -> Response:
    """Show every party's decision finality and its claims."""
    return show(request, session, user, agreement_id, notice=notice)


@router.post("/agreements/{agreement_id}/finality/publication")
def publication(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
                party: Annotated[str, Form()] = "", published_on: Annotated[str, Form()] = "",
                notice_sent_on: Annotated[str, Form()] = "") -> Response:
    """Record when the minutes of a party's decision were published (and a notice sent to a party)."""
    form = WebForm(dict(party=party, published_on=published_on, notice_sent_on=notice_sent_on))
    require_permitted(request, session, user, _party_case(finality_page(request, session, user, agreement_id), party),
                      "record_publication")
    published = form.date("published_on", required=False)
    notice = form.date("notice_sent_on", required=False)
    failed = f"publication:{party}"
    if form.errors:
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    data = PublicationIn(published_on=published, notice_sent_on=notice)
    if not form.ran(work, lambda uow: claims.record_publication(uow, agreement_id, party, data, user.actor)):
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    return RedirectResponse(f"/agreements/{agreement_id}/finality?notice=published", status_code=303)


@router.post("/agreements/{agreement_id}/finality/claims")
def claim(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
          party: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "",
          claimant: Annotated[str, Form()] = "", filed_on: Annotated[str, Form()] = "",
          reference: Annotated[str, Form()] = "") -> Response:
    """Record a claim for rectification or an appeal against a party's decision (who, when, reference)."""
    form = WebForm(dict(party=party, kind=kind, claimant=claimant, filed_on=filed_on, reference=reference))
    require_permitted(request, session, user, _party_case(finality_page(request, session, user, agreement_id), party),
                      "record_claim")
    if kind not in ("rectification", "appeal"):
        form.fail("kind", "claim.error.kind")
    who = form.text("claimant", min_length=2, max_length=200)
    filed = form.date("filed_on")
    ref = form.text("reference", max_length=100, required=False)
    if filed and filed > today_of(request):
        form.fail("filed_on", "claim.error.future")
    failed = f"claim:{party}"
    if form.errors or who is None or filed is None:
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    data = ClaimIn(kind=kind, claimant=who, filed_on=filed, reference=ref)  # type: ignore[arg-type]
    if not form.ran(work, lambda uow: claims.record_claim(uow, agreement_id, party, data, user.actor)):
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    return RedirectResponse(f"/agreements/{agreement_id}/finality?notice=claimed", status_code=303)


@router.post("/agreements/{agreement_id}/finality/claims/{claim_id}/outcome")
def outcome(work: WorkDep, request: Request, agreement_id: int, claim_id: int, user: User, session: SessionDep,
            party: Annotated[str, Form()] = "", outcome: Annotated[str, Form()] = "",
            outcome_on: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    """Record a claim's outcome: upheld (the party decides again), rejected or withdrawn."""
    form = WebForm(dict(party=party, outcome=outcome, outcome_on=outcome_on, note=note))
    require_permitted(request, session, user, _party_case(finality_page(request, session, user, agreement_id), party),
                      "uphold_claim", "settle_claim")
    if outcome not in ("upheld", "rejected", "withdrawn"):
        form.fail("outcome", "claim.error.outcome")
    decided: date | None = form.date("outcome_on")
    text = form.text("note", max_length=2000, required=False)
    if decided and decided > today_of(request):
        form.fail("outcome_on", "claim.error.future")
    failed = f"outcome:{claim_id}"
    if form.errors or decided is None:
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    data = ClaimOutcomeIn(outcome=outcome, outcome_on=decided, note=text)  # type: ignore[arg-type]
    if not form.ran(work, lambda uow: claims.decide_claim(uow, agreement_id, party, claim_id, data, user.actor)):
        return show(request, session, user, agreement_id, status=422, form=form, failed=failed)
    return RedirectResponse(f"/agreements/{agreement_id}/finality?notice=decided", status_code=303)
