"""The agreement page and what a party does on it: record its body's decision (or decline with a reason), sign.

Both forms carry the SHA-256 of the text they were shown with; the service compares it with the current text
inside the locked transaction, and if the text was revised in the meantime the decision or signature is refused
(409, naming the current version) with nothing written, so nobody decides on or signs a version they have not read.
A substitute acts with `on_behalf_of`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web.delegation import acting_actor
from api.web.forms import Form as WebForm
from api.web.forms import read_decision
from api.web.render import render, render_markdown
from api.web.routing import User, WebUser, read_page, today_of, web_router
from api.web.task_views import task_section
from api.web.views import agreement_view, readable_by_any
from engine.errors import InvalidInput, NotFound
from engine.service import UnitOfWork
from workflows.agreement import cases as agreement_cases
from workflows.agreement import service
from workflows.agreement.record import download_name, record_to_download

router = web_router()

NOTICES = {"decided", "declined", "signed", "circulated", "revised", "reminded", "created",
           "task_created", "task_continued", "task_confirmed"}  # the last three: task-specific agreements
# notices of their own message (not `notice.<name>`): a signature that leaves others missing, nobody reminded
OWN_NOTICES = {"signed_partial": "agreement.notice.signed_partial", "reminded_none": "agreement.notice.reminded_none",
               "record_pending": "agreement.notice.record_pending", "record_none": "agreement.notice.record_none"}


def show_agreement(request: Request, session: Session, user: WebUser, agreement_id: int, *, status: int = 200,
                   form: WebForm | None = None, form_party: str | None = None, notice: str | None = None,
                   count: int | None = None, hours: int | None = None) -> Response:
    """Render the agreement page, optionally with a form that failed and its errors."""
    view = agreement_view(session, request.app.state.ctx.registry, user, agreement_id,
                          request.app.state.ctx.clock.now(), user.lang, reads=request.app.state.agreement_reads)
    own = OWN_NOTICES.get(notice or "")
    task = task_section(request, session, user, agreement_id, view.permitted)
    return render(request, "agreement.html", user.lang, status=status, user=user, view=view, task=task,
                  document=render_markdown(view.agreement.document), form=form or WebForm({}), empty_form=WebForm({}),
                  form_party=form_party, notice=notice if notice in NOTICES else None, own_notice=own,
                  count=count, hours=hours, today=today_of(request))


def _on_behalf(value: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput("on_behalf_of", "must be a person id")
    return int(value)


@router.get("/agreements/{agreement_id}")
async def agreement_page(request: Request, agreement_id: int, notice: str | None = None, count: int | None = None,
                         hours: int | None = None) -> Response:
    """Show the agreement: its text, version and hash, every party's progress, and what the viewer can do."""
    return await read_page(request, lambda session, user: show_agreement(
        request, session, user, agreement_id, notice=notice, count=count, hours=hours))


@router.get("/agreements/{agreement_id}/record.pdf")
def sealed_record(agreement_id: int, user: User, session: SessionDep) -> Response:
    """Download the agreement's sealed record (a party of the agreement, its coordinator, an administrator)."""
    readable_by_any(session, [user.actor], agreement_id)
    try:
        row = record_to_download(session, agreement_id)
    except NotFound as exc:  # the in-force mail links here before the sweep has made it: the agreement page says so
        if exc.message_id not in ("record.pending", "record.none"):
            raise
        notice = "record_pending" if exc.message_id == "record.pending" else "record_none"
        return RedirectResponse(f"/agreements/{agreement_id}?notice={notice}", status_code=303)
    return Response(row.pdf or b"", media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{download_name(row)}"'})


@router.post("/agreements/{agreement_id}/decision")
def record_decision(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
                    party: Annotated[str, Form()] = "", outcome: Annotated[str, Form()] = "",
                    body: Annotated[str, Form()] = "", decided_on: Annotated[str, Form()] = "",
                    section: Annotated[str, Form()] = "", minutes_url: Annotated[str, Form()] = "",
                    note: Annotated[str, Form()] = "", on_behalf_of: Annotated[str, Form()] = "",
                    sha256: Annotated[str, Form()] = "", published_on: Annotated[str, Form()] = "") -> Response:
    """Record the party's decision (body, date, § of the minutes, the minutes' publication); declining needs a
    reason."""
    form = WebForm(dict(party=party, outcome=outcome, body=body, decided_on=decided_on, section=section,
                        minutes_url=minutes_url, note=note, on_behalf_of=on_behalf_of, published_on=published_on))
    today = today_of(request)
    actor = acting_actor(session, user.actor, _on_behalf(on_behalf_of), today)
    readable_by_any(session, [actor], agreement_id)
    data = read_decision(form, today)
    if data is None:
        return show_agreement(request, session, user, agreement_id, status=422, form=form, form_party=party)
    # the form always carries the hash of the text it showed; the service compares it under the lock
    seen = data.model_copy(update={"document_sha256": sha256 or "0" * 64})
    work.run(lambda uow: service.decide(uow, agreement_id, party, seen, actor))
    notice = "decided" if data.outcome == "approved" else "declined"
    return RedirectResponse(f"/agreements/{agreement_id}?notice={notice}", status_code=303)


@router.post("/agreements/{agreement_id}/sign")
def sign(work: WorkDep, request: Request, agreement_id: int, user: User, session: SessionDep,
         party: Annotated[str, Form()] = "", sha256: Annotated[str, Form()] = "",
         on_behalf_of: Annotated[str, Form()] = "", confirm: Annotated[str, Form()] = "") -> Response:
    """Sign the version of the text the signer saw, for their organisation (or for whom they substitute).

    The form asks the signer to confirm that they have read that version (its number and SHA-256 are named next
    to the checkbox, whose value is the hash); without the confirmation nothing is recorded.
    """
    actor = acting_actor(session, user.actor, _on_behalf(on_behalf_of), today_of(request))
    readable_by_any(session, [actor], agreement_id)
    if not sha256 or confirm != sha256:
        form = WebForm({"confirm": ""})
        form.fail("confirm", "agreement.error.sign_confirm")
        return show_agreement(request, session, user, agreement_id, status=422, form=form, form_party=party)

    def signed(uow: UnitOfWork) -> int:
        service.sign(uow, agreement_id, party, actor, sha256)
        case = agreement_cases.party_case(uow, agreement_id, party)
        return max(int(case.data.get("required_signatures", 1)) - agreement_cases.count_signatures(uow, case), 0)

    missing = work.run(signed)
    if missing:
        return RedirectResponse(f"/agreements/{agreement_id}?notice=signed_partial&count={missing}", status_code=303)
    return RedirectResponse(f"/agreements/{agreement_id}?notice=signed", status_code=303)
