"""The annual cycle's pages: create a year's cycle from a form, and the cycle's own page.

A cycle's page shows its milestones, the measures by status, the report requests and the survey's summary; to
whoever runs the cycle it offers the steps the engine permits now, the report requests' form and the closing.
The forms it posts to are in `cycle_plan` (measures, notes, requests, steps) and `cycle_reports` (reports,
closing, the annual report, the survey window).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import RedirectResponse, Response

from api.deps import SessionDep, WorkDep
from api.web import board
from api.web.cycle_views import cycle_view, responsible_label, responsible_options
from api.web.forms import Form as WebForm
from api.web.render import render
from api.web.routes.dashboards import require_coordinator
from api.web.routing import User, WebUser, today_of, web_router
from engine.errors import Conflict
from workflows.cycle import service
from workflows.cycle.annual_report import latest_reports
from workflows.cycle.models import CycleSchedule
from workflows.cycle.schedule import cycle_dates, next_cycle_year
from workflows.cycle.schemas import DEFAULT_MILESTONES, CycleCreate

router = web_router()
NOTICES = {"created", "step", "measure_saved", "measure_removed", "noted", "requested", "requested_unreachable",
           "reported", "closed", "window"}


def _milestones(session: Session) -> dict[str, dict[str, int]]:
    row = session.execute(select(CycleSchedule).where(col(CycleSchedule.name) == "default")).scalars().first()
    return dict(row.milestones) if row else dict(DEFAULT_MILESTONES)


def _new_page(request: Request, session: Session, user: WebUser, form: WebForm, status: int = 200) -> Response:
    milestones = _milestones(session)
    year = form.get("year")
    dates = cycle_dates(milestones, int(year)) if year.isdigit() and 2000 <= int(year) <= 2100 else None
    return render(request, "cycle_new.html", user.lang, status=status, user=user, form=form, dates=dates,
                  cycles=board.cycles(session))


@router.get("/cycles/new")
def new_cycle_page(request: Request, user: User, session: SessionDep) -> Response:
    """Show the form for a year's cycle, proposing the next year the schedule would create."""
    require_coordinator(user)
    year = next_cycle_year(_milestones(session), today_of(request))
    return _new_page(request, session, user, WebForm({"year": str(year)}))


@router.post("/cycles/new")
def create_cycle(work: WorkDep, request: Request, user: User, session: SessionDep, year: Annotated[str,
                 Form()] = "") -> Response:
    """Create a year's cycle now (it is otherwise created on the schedule's date)."""
    require_coordinator(user)
    form = WebForm({"year": year})
    text = form.get("year")
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        form.fail("year", "cycle.error.year")
        return _new_page(request, session, user, form, status=422)
    try:
        case = work.run(
            lambda uow: service.create_cycle(uow, CycleCreate(year=int(text)), user.actor))
    except Conflict:
        form.fail("year", f"cycle.error.exists|{text}")
        return _new_page(request, session, user, form, status=422)
    return RedirectResponse(f"/cycles/{case.id}?notice=created", status_code=303)


def show_cycle(request: Request, session: Session, user: WebUser, cycle_id: int, *, status: int = 200,
               notice: str | None = None, refusal: str | None = None, request_form: WebForm | None = None,
               close_form: WebForm | None = None) -> Response:
    """Render a cycle's page, optionally with a refusal or a failed form and its errors."""
    ctx = request.app.state.ctx
    view = cycle_view(session, ctx.registry, user, cycle_id, ctx.clock.now())
    today = today_of(request)
    return render(request, "cycle.html", user.lang, status=status, user=user, v=view, c=view.data,
                  measures=board.measures_by_status(session, cycle_id), names=view.names, today=today,
                  measure_overdue=board.measure_overdue, notice=notice if notice in NOTICES else None,
                  refusal=refusal, label=lambda key: responsible_label(key, view.names, user.lang),
                  request_form=request_form or WebForm({}), close_form=close_form or WebForm({}),
                  options=responsible_options(session, user.lang) if view.may("request_report") else [],
                  reports=latest_reports(session, cycle_id) if view.may("close") or view.data.feedback else [])


@router.get("/cycles/{cycle_id}")
def cycle_page(request: Request, cycle_id: int, user: User, session: SessionDep,
               notice: str | None = None) -> Response:
    """Follow a cycle: milestones, measures, report requests, the survey; run it when the viewer runs it."""
    return show_cycle(request, session, user, cycle_id, notice=notice)
