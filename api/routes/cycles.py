"""The annual cycle API: schedule, cycles, measures and notes, reports, survey, close, the annual report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlmodel import col

from api.access import ReadAccess
from api.deps import ActorDep, AdminDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.errors import NotPermitted
from engine.models import Case
from engine.service import UnitOfWork
from workflows.cycle import reports, schedule, service
from workflows.cycle.annual_report import render_html, render_pdf, report_data
from workflows.cycle.models import CycleSchedule
from workflows.cycle.read import cycle_access, cycle_row, may_see_cycles, read_cycle, readable_cycle
from workflows.cycle.schemas import (
    AgreeIn,
    CloseIn,
    CycleCreate,
    CycleRead,
    MeasuresAdd,
    Milestone,
    NoteIn,
    ReportIn,
    ReportRequestIn,
    ScheduleIn,
    ScheduleRead,
    SurveyIn,
)
from workflows.cycle.service import is_cycle_manager

router = APIRouter(prefix="/cycles", tags=["cycles"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)
Lang = Annotated[str, Query(pattern="^(fi|sv|en)$")]


def _schedule_read(row: CycleSchedule, planner_id: int | None, today_year: int) -> ScheduleRead:
    from datetime import date

    year = schedule.next_cycle_year(row.milestones, date(today_year, 1, 1))
    return ScheduleRead(milestones={k: Milestone(**v) for k, v in row.milestones.items()},
                        coordinator_id=row.coordinator_id, next_year=year,
                        next_creation=schedule.milestone_date(row.milestones, "cycle_created", year),
                        planner_case_id=planner_id)


@router.put("/schedule", response_model=ScheduleRead)
def put_schedule(work: WorkDep, body: ScheduleIn, ctx: CtxDep, actor: AdminDep) -> ScheduleRead:
    """Set the yearly schedule (admin); next year's cycle is created on its `cycle_created` date."""
    def _do(uow: UnitOfWork) -> ScheduleRead:
        row = schedule.set_schedule(uow, body, actor)
        return _schedule_read(row, row.case_id, uow.now.year)
    result: ScheduleRead = work.run(_do)
    return result


@router.get("/schedule", response_model=ScheduleRead)
def get_schedule(session: SessionDep, ctx: CtxDep, actor: ActorDep) -> ScheduleRead:
    """Return the yearly schedule (administrators, coordinators and the annual follow-up's participants)."""
    if not (is_cycle_manager(actor) or may_see_cycles(session, actor)):
        raise NotPermitted("the annual follow-up's schedule is read by its participants")
    now = ctx.clock.now()
    row = schedule.read_schedule(session, now)
    return _schedule_read(row, row.case_id, now.year)


@router.post("", response_model=CycleRead, status_code=status.HTTP_201_CREATED)
def create(work: WorkDep, body: CycleCreate, ctx: CtxDep, session: SessionDep, actor: ActorDep,
           response: Response) -> CycleRead:
    """Create a year's cycle by hand (it is also created on schedule)."""
    case = work.run(lambda uow: service.create_cycle(uow, body, actor))
    response.headers["Location"] = f"/api/v1/cycles/{case.id}"
    return read_cycle(session, ctx.registry, case.id, actor)


@router.get("", response_model=list[CycleRead])
def list_cycles(ctx: CtxDep, session: SessionDep, actor: ActorDep) -> list[CycleRead]:
    """List the cycles you may read (the annual follow-up's participants), newest year first."""
    rows = session.execute(select(Case).where(col(Case.workflow) == service.CYCLE).order_by(col(Case.id))).scalars()
    ids = [c.id or 0 for c in rows if cycle_access(session, actor, c)[0] >= ReadAccess.SHARED]
    cycles = [read_cycle(session, ctx.registry, i, actor) for i in ids]
    return sorted(cycles, key=lambda c: -c.year)


@router.get("/{cycle_id}", response_model=CycleRead)
def get(cycle_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> CycleRead:
    """Return a cycle: milestones, measures with notes, report requests with versions, survey summary."""
    readable_cycle(session, actor, cycle_id)
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.post("/{cycle_id}/agree", response_model=CycleRead)
def agree(work: WorkDep, cycle_id: int, body: AgreeIn, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> CycleRead:
    """Record the measures the planning meeting agreed."""
    work.run(lambda uow: service.agree(uow, cycle_id, body, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.post("/{cycle_id}/measures", response_model=CycleRead, status_code=status.HTTP_201_CREATED)
def add_measures(work: WorkDep, cycle_id: int, body: MeasuresAdd, ctx: CtxDep, session: SessionDep,
                 actor: ActorDep) -> CycleRead:
    """Add measures during the year."""
    work.run(lambda uow: service.add_later(uow, cycle_id, body.measures, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.post("/{cycle_id}/measures/{measure_id}/notes", response_model=CycleRead, status_code=status.HTTP_201_CREATED)
def add_note(work: WorkDep, cycle_id: int, measure_id: int, body: NoteIn, ctx: CtxDep, session: SessionDep,
             actor: ActorDep) -> CycleRead:
    """Record a dated status note on a measure (its responsible, coordinators, administrators)."""
    work.run(lambda uow: service.note(uow, cycle_id, measure_id, body, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.post("/{cycle_id}/reports", response_model=CycleRead, status_code=status.HTTP_201_CREATED)
def request_report(work: WorkDep, cycle_id: int, body: ReportRequestIn, ctx: CtxDep, session: SessionDep,
                   actor: ActorDep) -> CycleRead:
    """Ask a network or responsible council for a report by a deadline (the cycle's coordinator or an admin).

    The request is mailed to the council's contacts or the network's members; when nobody receives it, its
    `unreachable` is true in this response (and on the cycle), so the coordinator can add a contact person.
    """
    work.run(lambda uow: reports.request_report(uow, cycle_id, body.responsible, body.deadline, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.put("/{cycle_id}/reports/{responsible}", response_model=CycleRead)
def report(work: WorkDep, cycle_id: int, responsible: str, body: ReportIn, ctx: CtxDep, session: SessionDep,
           actor: ActorDep) -> CycleRead:
    """Submit a report for a network (network:alke) or council (regional_council:06); a repeat is a new version."""
    work.run(lambda uow: reports.submit_report(uow, cycle_id, responsible, body, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.put("/{cycle_id}/survey", response_model=CycleRead)
def survey(work: WorkDep, cycle_id: int, body: SurveyIn, ctx: CtxDep, session: SessionDep, actor: ActorDep,
           organisation: Annotated[str | None, Query(max_length=80, description="Coordinators: for whom")] = None,
           ) -> CycleRead:
    """Answer the annual survey of the regional directors (ratings 1-5 and free text) for your council."""
    work.run(lambda uow: reports.answer_survey(uow, cycle_id, body, actor, organisation))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.post("/{cycle_id}/close", response_model=CycleRead)
def close(work: WorkDep, cycle_id: int, body: CloseIn, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> CycleRead:
    """Close the reviewed cycle with feedback for Kuntaliitto; generates the annual report, carries measures over."""
    work.run(lambda uow: service.close(uow, cycle_id, body.feedback, actor))
    return read_cycle(session, ctx.registry, cycle_id, actor)


@router.get("/{cycle_id}/report.html", response_class=HTMLResponse)
def report_html(cycle_id: int, session: SessionDep, actor: ActorDep, lang: Lang = "fi") -> HTMLResponse:
    """Return the annual report as HTML, generated from the current data (who may read the cycle)."""
    readable_cycle(session, actor, cycle_id)
    return HTMLResponse(render_html(report_data(session, cycle_row(session, cycle_id)), lang))


@router.get("/{cycle_id}/report.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "The annual report as PDF"}})
def report_pdf(cycle_id: int, session: SessionDep, actor: ActorDep, lang: Lang = "fi") -> Response:
    """Return the annual report as PDF (who may read the cycle)."""
    readable_cycle(session, actor, cycle_id)
    case = cycle_row(session, cycle_id)
    pdf = render_pdf(report_data(session, case), lang)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="toimintakertomus-{case.data["year"]}.pdf"'})


@router.put("/networks/{network}/members/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def add_member(work: WorkDep, network: str, person_id: int, ctx: CtxDep, actor: AdminDep) -> Response:
    """Let a person report for a network (admin)."""
    work.run(lambda uow: reports.add_network_member(uow, network, person_id, actor))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
