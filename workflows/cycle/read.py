"""Read model of a cycle: milestones, measures with notes, report requests with versions, survey summary."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import CaseNotFound, NotFound
from engine.models import Case, Organisation
from engine.permissions import ReadAccess, case_access, permitted_for
from engine.registry import Registry
from workflows.cycle.annual_report import survey_summary
from workflows.cycle.models import AnnualReport, CycleReport, Measure, MeasureNote, NetworkMember, SurveyAnswer
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
    return as_read_by(session, actor, case, CycleRead(
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
        allowed_triggers=permitted_for(registry, session, case, actor)))


# -- who reads a cycle, and how much (the engine's rule, widened by what only the cycle knows) --------------------

PARTICIPANT_KINDS = ("regional_council",)  # every council takes part in the annual follow-up (and Kuntaliitto)
PARTICIPANT_KEYS = ("association:kuntaliitto",)


def responsibles_of(session: Session, actor: Actor | None) -> set[str]:
    """Return for whom the actor reports in cycles: their organisation's key and `network:<key>` of their networks."""
    if actor is None or actor.person_id is None:
        return set()
    mine = {f"network:{n}" for n in session.execute(select(col(NetworkMember.network))
                                                    .where(col(NetworkMember.person_id) == actor.person_id)).scalars()}
    if actor.organisation_id is not None:
        key = session.execute(select(col(Organisation.key))
                              .where(col(Organisation.id) == actor.organisation_id)).scalar()
        if key:
            mine.add(key)
    return mine


def cycle_access(session: Session, actor: Actor | None, case: Case) -> tuple[ReadAccess, set[str]]:
    """Return how much of a cycle the actor reads, and the responsibles whose requests and notes they see.

    FULL: the cycle's coordinator and administrators. SHARED (the plan, their own report requests and notes): the
    regional councils, Kuntaliitto and the networks' members, the participants of the annual follow-up. Nobody else.
    """
    access = case_access(session, actor, case)
    if access == ReadAccess.FULL:
        return access, set()
    mine = responsibles_of(session, actor)
    if access == ReadAccess.NONE and _participant(session, actor, mine):
        access = ReadAccess.SHARED
    return min(access, ReadAccess.SHARED), mine


def _participant(session: Session, actor: Actor | None, mine: set[str]) -> bool:
    if actor is None:
        return False
    if any(r.startswith("network:") for r in mine):
        return True
    if actor.organisation_id is None:
        return False
    kind, key = session.execute(select(col(Organisation.kind), col(Organisation.key))
                                .where(col(Organisation.id) == actor.organisation_id)).one()
    return kind in PARTICIPANT_KINDS or key in PARTICIPANT_KEYS


def readable_cycle(session: Session, actor: Actor | None, cycle_id: int,
                   at_least: ReadAccess = ReadAccess.SHARED) -> tuple[Case, ReadAccess]:
    """Return a cycle the actor may read and how much; unknown and hidden are both 404 (like any case)."""
    case = session.get(Case, cycle_id)
    access = cycle_access(session, actor, case)[0] if case is not None and case.workflow == CYCLE else ReadAccess.NONE
    if case is None or access < at_least:
        raise CaseNotFound(f"no annual cycle with id {cycle_id}", message_id="error.case_not_found",
                           params={"id": cycle_id})
    return case, access


def as_read_by(session: Session, actor: Actor | None, case: Case, view: CycleRead) -> CycleRead:
    """Return a cycle as the actor may read it: the plan for everyone who may open it, the rest only for its own.

    A participant sees the milestones and the measures (the shared plan), the notes and report requests of what it
    reports for, and of the survey only how many answered; no actor reads as an outsider (pass SYSTEM for all).
    """
    access, mine = cycle_access(session, actor, case)
    if access == ReadAccess.FULL:
        return view
    measures = [m.model_copy(update={"notes": m.notes if m.responsible in mine else []}) for m in view.measures]
    return view.model_copy(update={
        "measures": measures, "report_requests": [r for r in view.report_requests if r.responsible in mine],
        "survey": {"answers": view.survey.get("answers", 0)}})


def may_see_cycles(session: Session, actor: Actor | None) -> bool:
    """Tell whether the actor takes part in the annual follow-up at all (and so reads its shared schedule)."""
    if actor is None:
        return False
    if actor.is_admin or actor.is_system:
        return True
    return _participant(session, actor, responsibles_of(session, actor))
