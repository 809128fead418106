"""A network's or council's report on its measures, the cycle's closing, the annual report page, the survey window.

The emailed link of a report request lands on `/cases/{request id}`, which redirects here
(`api/web/case_pages.py`). The report is written by the responsible's own staff (or whoever runs the cycle);
anyone else gets a 403 page in their language and nothing is written. Each report is a new version; the
earlier ones stay readable (`?version=n`). The form carries the version it replaces, so a second send of the
same form is refused (409) instead of stacking a copy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.refusals import refusal_text
from api.web.cycle_forms import STATUSES, field_of, read_report, read_window, report_values, version_of
from api.web.cycle_views import cycle_view, request_view, responsible_label
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routes.cycles import show_cycle
from api.web.routes.survey import show_survey
from api.web.routing import User, WebUser, web_router
from engine.errors import CaseNotFound, EngineError, InvalidInput, NotPermitted
from workflows.cycle import reports, service
from workflows.cycle.annual_report import report_data
from workflows.cycle.read import cycle_row

router = web_router()


async def posted_values(request: Request) -> dict[str, str]:
    """Return a posted form's text fields (the report's fields are named after its measures: status_<id>)."""
    form = await request.form()  # parsed once: the CSRF check has read it already
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(posted_values)]


def show_report(request: Request, session: Session, user: WebUser, cycle_id: int, request_id: int, *,
                status: int = 200, form: WebForm | None = None, version: int | None = None,
                refusal: str | None = None, notice: str | None = None) -> Response:
    """Render a report request's page: the request, its versions (one shown), the form when the viewer may report."""
    ctx = request.app.state.ctx
    view = request_view(session, ctx.registry, user, cycle_id, request_id, ctx.clock.now())
    shown = next((r for r in view.versions if r.version == version), view.versions[-1] if view.versions else None)
    if form is None:
        form = WebForm(report_values(view.measures, view.versions[-1] if view.versions else None))
    titles = {m.id: m for m in view.measures}
    return render(request, "cycle_report.html", user.lang, status=status, user=user, r=view, shown=shown,
                  form=form, statuses=STATUSES, titles=titles, refusal=refusal, notice=notice,
                  year=int(view.cycle.data["year"]))


@router.get("/cycles/{cycle_id}/reports/{report_case_id}")
def report_page(request: Request, cycle_id: int, report_case_id: int, user: User, session: SessionDep,
                version: int | None = None, notice: str | None = None) -> Response:
    """Show a report request and its versions; the responsible's own staff write the next version here."""
    return show_report(request, session, user, cycle_id, report_case_id, version=version,
                       notice="reported" if notice == "reported" else None)


@router.post("/cycles/{cycle_id}/report")
def submit_report(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
                  values: Posted) -> Response:
    """Store the report as a new version and apply its measure statuses as dated notes."""
    text = values.get("request", "")
    if not text.isdigit():
        raise CaseNotFound("no report request given", message_id="error.case_not_found", params={"id": text})
    request_id = int(text)
    ctx = request.app.state.ctx
    view = request_view(session, ctx.registry, user, cycle_id, request_id, ctx.clock.now())  # 403 for others
    keys = {"summary", "replaces"} | {f"{p}_{m.id}" for m in view.measures for p in ("status", "note")}
    form = WebForm({k: v for k, v in values.items() if k in keys})
    if not view.may_report:
        return show_report(request, session, user, cycle_id, request_id, status=409, form=form,
                           refusal=refusal_text(EngineError("closed", message_id="cycle.error.report_closed"),
                                                user.lang, ctx.registry))
    data = read_report(form, view.measures)
    if data is None:
        return show_report(request, session, user, cycle_id, request_id, status=422, form=form)
    replaces = version_of(form, "replaces")
    try:
        work.run(lambda uow: reports.submit_report(uow, cycle_id, view.responsible, data, user.actor, replaces))
    except InvalidInput as exc:
        form.fail(field_of(exc.field, "summary"), f"cycle.error.refused|0|{refusal_text(exc, user.lang)}")
        return show_report(request, session, user, cycle_id, request_id, status=422, form=form)
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        return show_report(request, session, user, cycle_id, request_id, status=exc.status_code, form=form,
                           refusal=refusal_text(exc, user.lang, ctx.registry))
    return RedirectResponse(f"/cycles/{cycle_id}/reports/{request_id}?notice=reported", status_code=303)


@router.post("/cycles/{cycle_id}/close")
def close_cycle(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
                feedback: Annotated[str, Form()] = "") -> Response:
    """Close the reviewed cycle with the follow-up's feedback: the annual report, unfinished measures carried over."""
    form = WebForm({"feedback": feedback})
    text = form.text("feedback", max_length=20000)
    if text is None:
        return show_cycle(request, session, user, cycle_id, status=422, close_form=form)
    try:
        work.run(lambda uow: service.close(uow, cycle_id, text, user.actor))
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        refused = refusal_text(exc, user.lang, request.app.state.ctx.registry)
        return show_cycle(request, session, user, cycle_id, status=exc.status_code, close_form=form,
                          refusal=f"cycle.error.refused|0|{refused}")
    return RedirectResponse(f"/cycles/{cycle_id}/report?notice=closed", status_code=303)


@router.get("/cycles/{cycle_id}/report")
def annual_report_page(request: Request, cycle_id: int, user: User, session: SessionDep,
                       notice: str | None = None) -> Response:
    """Show the annual report: realised against agreed, the reports by name, what was carried to next year."""
    ctx = request.app.state.ctx
    view = cycle_view(session, ctx.registry, user, cycle_id, ctx.clock.now())
    data = report_data(session, cycle_row(session, cycle_id))
    carried = [(m, view.carried_to[m.id or 0]) for m in view.measures if (m.id or 0) in view.carried_to]
    return render(request, "cycle_annual.html", user.lang, user=user, v=view, d=data, carried=carried,
                  label=lambda key: responsible_label(key, view.names | _names(data, user.lang), user.lang),
                  notice="closed" if notice == "closed" else None)


def _names(data: dict[str, object], lang: str) -> dict[str, str]:
    names = data.get("names")
    if not isinstance(names, dict):
        return {}
    return {k: v.get(lang) or v.get("fi", k) for k, v in names.items()}


@router.post("/cycles/{cycle_id}/survey/window")
def set_window(work: WorkDep, request: Request, cycle_id: int, user: User, session: SessionDep,
               survey_opens: Annotated[str, Form()] = "", survey_closes: Annotated[str, Form()] = "",
               version: Annotated[str, Form()] = "") -> Response:
    """Set the days the survey is open (administrators, as the definition's set_survey_window allows)."""
    if not user.actor.is_admin:
        raise NotPermitted("the survey's window is set by an administrator", message_id="cycle.error.admin_only")
    form = WebForm({"survey_opens": survey_opens, "survey_closes": survey_closes, "version": version})
    window = read_window(form)
    if window is None:
        return show_survey(request, session, user, cycle_id, status=422, window_form=form)
    try:
        work.run(lambda uow: reports.set_survey_window(uow, cycle_id, window[0], window[1], user.actor,
                                                       version_of(form)))
    except InvalidInput as exc:
        form.fail(field_of(exc.field, "survey_opens"), f"cycle.error.refused|0|{refusal_text(exc, user.lang)}")
        return show_survey(request, session, user, cycle_id, status=422, window_form=form)
    except (NotPermitted, CaseNotFound):
        raise
    except EngineError as exc:
        return show_survey(request, session, user, cycle_id, status=exc.status_code, window_form=form,
                           refusal=refusal_text(exc, user.lang, request.app.state.ctx.registry))
    return RedirectResponse(f"/cycles/{cycle_id}/survey?notice=window", status_code=303)

