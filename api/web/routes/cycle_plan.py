"""Planning and following a cycle from its pages: steps, measures (add, edit, remove), dated notes, report requests.

Who runs the cycle (its own coordinator, administrators) plans it; a measure's responsible council or network
notes on its own measures. Every form carries the cycle's version: a form sent twice, or after a change made
in between, is refused by the service under the lock (409) with nothing written, and shown again as typed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.cycle_forms import (
    STATUSES,
    THEMES,
    MeasureFormIn,
    field_of,
    read_measure,
    read_note,
    read_request,
    version_of,
)
from api.web.cycle_views import acting_for, cycle_view, responsible_label, responsible_options
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routes.cycles import show_cycle
from api.web.routing import User, WebUser, today_of, web_router
from engine.errors import CaseNotFound, EngineError, InvalidInput, NotPermitted
from engine.permissions import CaseReader
from workflows.cycle import reports, service
from workflows.cycle.models import Measure, MeasureNote
from workflows.cycle.read import cycle_row
from workflows.cycle.who import is_staff_of, runs_cycle
from workflows.triggers import dispatch

router = web_router()


def _measure(session: Session, cycle_id: int, measure_id: int) -> Measure:
    m = session.get(Measure, measure_id)
    if m is None or m.cycle_id != cycle_id:
        raise CaseNotFound(f"no measure {measure_id} in cycle {cycle_id}", message_id="error.case_not_found",
                           params={"id": measure_id})
    return m


def show_measure(request: Request, session: Session, user: WebUser, cycle_id: int, measure_id: int | None, *,
                 status: int = 200, form: WebForm | None = None, note_form: WebForm | None = None,
                 refusal: str | None = None, notice: str | None = None) -> Response:
    """Render a measure's page (or the new-measure form): its fields, its dated notes, the note form."""
    ctx = request.app.state.ctx
    view = cycle_view(session, ctx.registry, user, cycle_id, ctx.clock.now())
    m = _measure(session, cycle_id, measure_id) if measure_id is not None else None
    staff = m is not None and is_staff_of(session, user.actor, m.responsible)
    if not view.runs and not staff:
        raise NotPermitted("a measure's page is for who runs the cycle and the measure's responsible",
                           message_id="cycle.error.not_responsible")
    if m is None and not view.may("add_measures"):
        raise NotPermitted("adding measures needs the cycle's coordinator", message_id="cycle.error.not_runner",
                           params={"year": view.data.year})
    may_note = False
    if m is not None:
        who = acting_for(session, view.case, user.actor, m.responsible, None)
        may_note = "note_measure" in CaseReader(ctx.registry, session, ctx.clock.now()).permitted(cycle_id, who)
    notes = list(session.execute(select(MeasureNote).where(col(MeasureNote.measure_id) == measure_id)
                                 .order_by(col(MeasureNote.noted_on), col(MeasureNote.id))).scalars()) if m else []
    values = {"title": m.title, "theme": m.theme, "responsible": m.responsible,
              "due_date": m.due_date.isoformat()} if m else {}
    return render(request, "cycle_measure.html", user.lang, status=status, user=user, v=view, m_=m, notes=notes,
                  form=form or WebForm(values), note_form=note_form or WebForm({"status": m.status if m else ""}),
                  themes=THEMES, statuses=STATUSES, may_note=may_note, refusal=refusal, notice=notice,
                  options=responsible_options(session, user.lang, m.responsible if m else ""),
                  label=lambda key: responsible_label(key, view.names, user.lang))


def _refused(request: Request, user: WebUser, exc: EngineError) -> str:
    return refusal_text(exc, user.lang, request.app.state.ctx.registry)


@router.post("/cycles/{cycle_id}/step")
def step(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
         trigger: Annotated[str, Form()] = "", version: Annotated[str, Form()] = "") -> Response:
    """Fire one of the cycle's plain steps the engine permits the viewer (agree, open or close the reporting...)."""
    view = cycle_view(session, request.app.state.ctx.registry, user, cycle_id, request.app.state.ctx.clock.now())
    if trigger not in view.steps:
        return show_cycle(request, session, user, cycle_id, status=409,
                          refusal="cycle.error.step_not_now")
    expected = version_of(WebForm({"version": version}))
    try:
        work.run(lambda uow: dispatch(uow, cycle_id, trigger, user.actor, {}, expected))
    except EngineError as exc:
        return show_cycle(request, session, user, cycle_id, status=exc.status_code,
                          refusal=f"cycle.error.refused|0|{_refused(request, user, exc)}")
    return RedirectResponse(f"/cycles/{cycle_id}?notice=step", status_code=303)


@router.get("/cycles/{cycle_id}/measures/new")
def new_measure_page(request: Request, cycle_id: int, user: User, session: SessionDep) -> Response:
    """Show the form for a new measure (who runs the cycle, while the definition lets measures be added)."""
    return show_measure(request, session, user, cycle_id, None)


@router.get("/cycles/{cycle_id}/measures/{measure_id}")
def measure_page(request: Request, cycle_id: int, measure_id: int, user: User, session: SessionDep,
                 notice: str | None = None) -> Response:
    """Show a measure: its theme, responsible and due date, its dated notes, and the forms the viewer may use."""
    return show_measure(request, session, user, cycle_id, measure_id,
                        notice=notice if notice in ("saved", "noted") else None)


@router.post("/cycles/{cycle_id}/measures")
def save_measure(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
                 posted: Annotated[MeasureFormIn, Form()]) -> Response:
    """Add a measure, change one, or remove one from the plan (who runs the cycle)."""
    form = posted.form()
    measure_id = int(form.get("measure")) if form.get("measure").isdigit() else None
    if not runs_cycle(cycle_row(session, cycle_id), user.actor):
        raise NotPermitted("planning the measures needs the cycle's coordinator", message_id="cycle.error.not_runner",
                           params={"year": cycle_row(session, cycle_id).data.get("year", "")})
    expected = version_of(form)
    try:
        if form.get("action") == "remove" and measure_id is not None:
            work.run(lambda uow: service.remove_measure(uow, cycle_id, measure_id, user.actor, expected))
            return RedirectResponse(f"/cycles/{cycle_id}?notice=measure_removed", status_code=303)
        keep = _measure(session, cycle_id, measure_id).responsible if measure_id is not None else ""
        data = read_measure(form, {k for k, _n in responsible_options(session, user.lang, keep)})
        if data is None:
            return show_measure(request, session, user, cycle_id, measure_id, status=422, form=form)
        if measure_id is None:
            work.run(lambda uow: service.add_later(uow, cycle_id, [data], user.actor, expected))
        else:
            work.run(lambda uow: service.edit_measure(uow, cycle_id, measure_id, data, user.actor, expected))
    except InvalidInput as exc:
        form.fail(field_of(exc.field, "title"), f"cycle.error.refused|0|{_refused(request, user, exc)}")
        return show_measure(request, session, user, cycle_id, measure_id, status=422, form=form)
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        return show_measure(request, session, user, cycle_id, measure_id, status=exc.status_code, form=form,
                            refusal=_refused(request, user, exc))
    return RedirectResponse(f"/cycles/{cycle_id}?notice=measure_saved#measures-heading", status_code=303)


@router.post("/cycles/{cycle_id}/notes")
def add_note(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
             measure: Annotated[str, Form()] = "", status: Annotated[str, Form()] = "",
             text: Annotated[str, Form()] = "", noted_on: Annotated[str, Form()] = "",
             version: Annotated[str, Form()] = "") -> Response:
    """Record a dated status note on a measure (who runs the cycle, or the measure's responsible)."""
    if not measure.isdigit():
        raise CaseNotFound("no measure given", message_id="error.case_not_found", params={"id": measure})
    measure_id = int(measure)
    m = _measure(session, cycle_id, measure_id)
    if not runs_cycle(cycle_row(session, cycle_id), user.actor) and not is_staff_of(session, user.actor,
                                                                                     m.responsible):
        raise NotPermitted("a measure is noted on by its responsible", message_id="cycle.error.not_responsible")
    form = WebForm({"status": status, "text": text, "noted_on": noted_on, "version": version})
    data = read_note(form, today_of(request))
    if data is None:
        return show_measure(request, session, user, cycle_id, measure_id, status=422, note_form=form)
    try:
        work.run(lambda uow: service.note(uow, cycle_id, measure_id, data, user.actor,
                                          expected_version=version_of(form)))
    except InvalidInput as exc:
        form.fail(field_of(exc.field, "text"), f"cycle.error.refused|0|{_refused(request, user, exc)}")
        return show_measure(request, session, user, cycle_id, measure_id, status=422, note_form=form)
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        return show_measure(request, session, user, cycle_id, measure_id, status=exc.status_code, note_form=form,
                            refusal=_refused(request, user, exc))
    return RedirectResponse(f"/cycles/{cycle_id}/measures/{measure_id}?notice=noted", status_code=303)


@router.post("/cycles/{cycle_id}/requests")
def request_report(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
                   responsible: Annotated[str, Form()] = "", deadline: Annotated[str, Form()] = "",
                   version: Annotated[str, Form()] = "") -> Response:
    """Ask a network or responsible council for a report by a deadline; flag it at once when nobody receives it."""
    if not runs_cycle(cycle_row(session, cycle_id), user.actor):
        raise NotPermitted("report requests are made by the cycle's coordinator", message_id="cycle.error.not_runner",
                           params={"year": cycle_row(session, cycle_id).data.get("year", "")})
    form = WebForm({"responsible": responsible, "deadline": deadline, "version": version})
    checked = read_request(form, {k for k, _n in responsible_options(session, user.lang)}, today_of(request))
    if checked is None:
        return show_cycle(request, session, user, cycle_id, status=422, request_form=form)
    try:
        child = work.run(lambda uow: reports.request_report(uow, cycle_id, checked[0], checked[1], user.actor,
                                                            version_of(form)))
    except InvalidInput as exc:
        form.fail(field_of(exc.field, "responsible"), f"cycle.error.refused|0|{_refused(request, user, exc)}")
        return show_cycle(request, session, user, cycle_id, status=422, request_form=form)
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        return show_cycle(request, session, user, cycle_id, status=exc.status_code, request_form=form,
                          refusal=f"cycle.error.refused|0|{_refused(request, user, exc)}")
    notice = "requested_unreachable" if child.data.get("recipients") == 0 else "requested"
    return RedirectResponse(f"/cycles/{cycle_id}?notice={notice}#reports-heading", status_code=303)
