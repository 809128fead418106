"""Read model of a cycle: milestones, measures with notes, report requests with versions, survey summary."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import NotFound
from engine.models import Case
from engine.permissions import permitted_for
from engine.registry import Registry
from workflows.cycle.annual_report import survey_summary
from workflows.cycle.models import AnnualReport, CycleReport, Measure, MeasureNote, SurveyAnswer
from workflows.cycle.schemas import CycleRead, MeasureRead, ReportRequestRead
from workflows.cycle.service import CYCLE


def cycle_row(session: Session, cycle_id: int) -> Case:
    """Return a cycle case or raise NotFound."""
    case = session.get(Case, cycle_id)
    if case is None or case.workflow != CYCLE:
        raise NotFound(f"no annual cycle with id {cycle_id}")
    return case


def carried_to_of(session: Session, measure_ids: list[int]) -> dict[int, int]:
    """Return, for measures carried over to a later year, the id of the copy: measure id -> copy's id."""
    if not measure_ids:
        return {}
    return {int(f): int(i) for i, f in session.execute(select(col(Measure.id), col(Measure.carried_from_id)).where(
        col(Measure.carried_from_id).in_(measure_ids)))}


def read_cycle(session: Session, registry: Registry, cycle_id: int, actor: Actor | None = None) -> CycleRead:
    """Load one cycle in a fixed number of queries."""
    case = cycle_row(session, cycle_id)
    measures = list(session.execute(select(Measure).where(col(Measure.cycle_id) == cycle_id)
                                    .order_by(col(Measure.number))).scalars())
    notes: dict[int, list[dict[str, object]]] = {m.id: [] for m in measures if m.id is not None}
    for n in session.execute(select(MeasureNote).where(col(MeasureNote.measure_id).in_(list(notes)))
                             .order_by(col(MeasureNote.noted_on), col(MeasureNote.id))).scalars():
        notes[n.measure_id].append({"noted_on": n.noted_on, "status": n.status, "text": n.text,
                                    "report_id": n.report_id})
    children = list(session.execute(select(Case).where(col(Case.parent_id) == cycle_id)
                                    .order_by(col(Case.id))).scalars())
    versions: dict[int, list[dict[str, object]]] = {c.id: [] for c in children if c.id is not None}
    for r in session.execute(select(CycleReport).where(col(CycleReport.request_case_id).in_(list(versions)))
                             .order_by(col(CycleReport.version))).scalars():
        versions[r.request_case_id].append({"id": r.id, "version": r.version, "summary": r.summary,
                                            "measures": r.measures, "submitted_at": r.submitted_at})
    carried_to = carried_to_of(session, [m.id for m in measures if m.id is not None])
    report = session.execute(select(AnnualReport).where(col(AnnualReport.cycle_id) == cycle_id)
                             .order_by(col(AnnualReport.id).desc()).limit(1)).scalars().first()
    return CycleRead(
        id=cycle_id, year=int(case.data["year"]), state=case.state, version=case.version, deadline=case.deadline,
        milestones={k: date.fromisoformat(v) for k, v in case.data["milestones"].items()},
        measures=[MeasureRead(id=m.id or 0, number=m.number, title=m.title, theme=m.theme, responsible=m.responsible,
                              due_date=m.due_date, status=m.status, carried_from_id=m.carried_from_id,
                              notes=notes[m.id or 0], carried_to_id=carried_to.get(m.id or 0)) for m in measures],
        report_requests=[ReportRequestRead(case_id=c.id or 0, responsible=c.data["responsible"], state=c.state,
                                           deadline=c.deadline, versions=versions[c.id or 0],
                                           recipients=c.data.get("recipients"),
                                           unreachable=c.data.get("recipients") == 0) for c in children],
        survey=survey_summary(list(session.execute(select(SurveyAnswer).where(
            col(SurveyAnswer.cycle_id) == cycle_id)).scalars())),
        feedback=case.data.get("feedback"), annual_report_generated_at=report.generated_at if report else None,
        allowed_triggers=permitted_for(registry, session, case, actor))
