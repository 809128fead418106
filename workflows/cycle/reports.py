"""Report requests per network and responsible council, versioned reports, and the regional directors' survey."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.calendar import effective_deadline
from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.models import Organisation, Person
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork, actor_roles
from workflows.common.dates import deadline_passed, today
from workflows.common.mail import queue_mail
from workflows.common.people import contacts_of
from workflows.cycle.models import NETWORKS, CycleReport, Measure, NetworkMember, SurveyAnswer
from workflows.cycle.schemas import QUESTIONS, NoteIn, ReportIn, SurveyIn
from workflows.cycle.service import (
    REPORT,
    check_responsible,
    check_version,
    cycle_case,
    may_speak_for,
    note,
    require_runner,
    wrong_state,
)
from workflows.cycle.who import runs_cycle


def react_to_cycle(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on cycle cases: open the report requests when the cycle starts reporting."""
    # the event, not a state name: whatever state a later version calls it, opening reporting asks for reports
    if record.changed_state and record.event_name == "ReportingOpened":
        request_reports(uow, record.case)


def request_reports(uow: UnitOfWork, cycle: CaseRow) -> list[CaseRow]:
    """Open one report request per responsible network or council of the cycle's measures (once each)."""
    existing = {c.data.get("responsible") for c in uow.children(cycle.id)}
    responsibles = sorted({r for (r,) in uow.session.execute(
        select(col(Measure.responsible)).where(col(Measure.cycle_id) == cycle.id).distinct())} - existing)
    orgs = {o.key: o for o in uow.session.execute(select(Organisation).where(
        col(Organisation.key).in_([r for r in responsibles if not r.startswith("network:")]))).scalars()}
    closes = date.fromisoformat(cycle.data["milestones"]["reporting_closes"])
    return [open_request(uow, cycle, responsible, orgs.get(responsible), closes, SYSTEM)
            for responsible in responsibles]


def open_request(uow: UnitOfWork, cycle: CaseRow, responsible: str, org: Organisation | None, deadline: date,
                 actor: Actor) -> CaseRow:
    """Create one report request and mail it to whoever receives it; flag it when nobody does.

    A request nobody receives would otherwise wait silently for its deadline: its data says `recipients: 0`,
    and the cycle's page and the API's `unreachable` show it to the coordinator from the moment it exists.
    """
    name = org.name_fi if org else responsible.removeprefix("network:")
    child = uow.create_case(REPORT, actor=actor, title=f"{cycle.title}: {name}", parent_id=cycle.id,
                            organisation_id=org.id if org else None, deadline=deadline,
                            data={"responsible": responsible, "report_version": 0},
                            payload={"responsible": responsible})
    recipients = report_recipients(uow, child, "party")
    for person_id in recipients:
        queue_mail(uow, template="cycle_report_requested", key=f"cycle-report-request:{child.id}:{person_id}",
                   case_id=child.id, person_id=person_id,
                   context={"year": cycle.data["year"], "responsible": name, "case_id": child.id,
                            "deadline": effective_deadline(deadline)})
    uow.set_data(child, recipients=len(recipients))
    return child


def request_report(uow: UnitOfWork, cycle_id: int, responsible: str, deadline: date, actor: Actor,
                   expected_version: int | None = None) -> CaseRow:
    """Ask a network or responsible council for a report by a deadline (the cycle's coordinator or an admin)."""
    cycle = cycle_case(uow, cycle_id)
    require_runner(cycle, actor, "request_report")
    check_version(cycle, expected_version)
    if not uow.may(cycle, "request_report"):
        raise wrong_state(uow, cycle, "request_report", f"the cycle is {cycle.state}: it takes no new requests",
                          "cycle.error.report_closed")
    key = check_responsible(uow, responsible, "responsible")
    if any(c.data.get("responsible") == key for c in uow.children(cycle.id)):
        raise InvalidInput("responsible", f"{key} has been asked for a report already",
                           message_id="cycle.error.requested_already")
    year = int(cycle.data["year"])
    if not date(year, 1, 1) <= deadline <= date(year + 1, 12, 31):
        raise InvalidInput("deadline", f"{deadline.isoformat()} is not in the {year} cycle")
    if deadline < today(uow):
        raise InvalidInput("deadline", f"{deadline.isoformat()} has passed")
    org = uow.session.execute(select(Organisation).where(col(Organisation.key) == key)).scalars().first()
    child = open_request(uow, cycle, key, org, deadline, actor)
    uow.fire(cycle.id, "request_report", actor=actor, payload={
        "request_id": child.id, "responsible": key, "deadline": deadline.isoformat(),
        "recipients": int(child.data["recipients"])})
    return child


def report_recipients(uow: UnitOfWork, case: CaseRow, role: str) -> list[int]:
    """Resolve roles on cycle cases: party = the council's contacts or the network's members."""
    if role == "coordinator":
        owner = uow.case(case.parent_id) if case.parent_id else case
        return [owner.coordinator_id] if owner.coordinator_id else []
    if role != "party" or case.workflow != REPORT:
        return []
    responsible = str(case.data.get("responsible", ""))
    if responsible.startswith("network:"):
        return [p for (p,) in uow.session.execute(select(col(NetworkMember.person_id)).where(
            col(NetworkMember.network) == responsible.removeprefix("network:")).order_by(col(NetworkMember.id)))]
    return contacts_of(uow, case.organisation_id, ("signatory", "coordinator"))


def request_case(uow: UnitOfWork, cycle_id: int, responsible: str) -> CaseRow:
    """Return the locked report request of one responsible, or raise NotFound."""
    cycle_case(uow, cycle_id)
    for child in uow.children(cycle_id):
        if child.data.get("responsible") == responsible:
            return child
    raise NotFound(f"the cycle has no report request for {responsible!r} (reporting may not be open yet)")


def submit_report(uow: UnitOfWork, cycle_id: int, responsible: str, data: ReportIn, actor: Actor,
                  replaces: int | None = None) -> CycleReport:
    """Store a report as a new version (earlier ones are kept) and apply its measure statuses as dated notes.

    `replaces` is the version the writer saw (0: none); a form sent twice, or after someone else's report,
    is refused (409) instead of stacking a version its writer never read.
    """
    child = request_case(uow, cycle_id, responsible)
    if not uow.may(child, "report"):
        raise wrong_state(uow, child, "report", f"the {responsible} report request is closed with its cycle",
                          "cycle.error.report_closed")
    if not may_speak_for(uow, actor, responsible, uow.case(cycle_id)):
        raise NotPermitted(f"you may not report for {responsible}", case_id=child.id, action="report",
                           message_id="cycle.error.not_responsible")
    current = int(child.data.get("report_version", 0))
    if replaces is not None and replaces != current:
        raise Conflict(f"the report is at version {current}, not {replaces}; reload and retry",
                       message_id="cycle.error.report_version", params={"version": current})
    seen: set[int] = set()
    for i, item in enumerate(data.measures):
        m = uow.session.get(Measure, item.measure_id)
        if m is None or m.cycle_id != cycle_id:
            raise InvalidInput(f"measures[{i}].measure_id", f"no measure {item.measure_id} in this cycle")
        if m.responsible != responsible:
            raise InvalidInput(f"measures[{i}].measure_id", f"measure {m.id} belongs to {m.responsible}, "
                               f"not {responsible}")
        if item.measure_id in seen:
            raise InvalidInput(f"measures[{i}].measure_id", f"measure {m.id} appears twice")
        seen.add(item.measure_id)
    version = int(uow.session.execute(select(func.coalesce(func.max(CycleReport.version), 0)).where(
        col(CycleReport.request_case_id) == child.id)).scalar_one()) + 1
    report = CycleReport(request_case_id=child.id, cycle_id=cycle_id, version=version, summary=data.summary,
                         measures=[m.model_dump() for m in data.measures], author_id=actor.person_id,
                         submitted_at=uow.now)
    uow.session.add(report)
    uow.session.flush()
    for item in data.measures:
        note(uow, cycle_id, item.measure_id, NoteIn(status=item.status, text=item.note), actor, report.id)
    payload: dict[str, Any] = {"report_id": report.id, "version": version, "measures": len(data.measures)}
    if child.deadline and deadline_passed(uow, child.deadline):
        payload["late"] = True
    own = bool(actor_roles(uow, child, actor) & {"party", "coordinator", "admin"})
    if not own:  # a network member: the engine reports for them; the event names who
        payload["reported_by"] = actor.person_id
    uow.fire(child.id, "report", actor=actor if own else SYSTEM, payload=payload)
    uow.set_data(child, report_version=version)
    return report


def answer_survey(uow: UnitOfWork, cycle_id: int, data: SurveyIn, actor: Actor,
                  organisation_key: str | None = None, replaces: int | None = None) -> SurveyAnswer:
    """Store a regional council's survey answer in the survey window; a new answer is a new version.

    `replaces` is the council's latest version the respondent saw (0: none): a second send of the same form is
    refused (409) rather than stored twice.
    """
    case = cycle_case(uow, cycle_id)
    m = case.data["milestones"]
    opens, closes = date.fromisoformat(m["survey_opens"]), date.fromisoformat(m["survey_closes"])
    if today(uow) < opens or deadline_passed(uow, closes):
        raise Conflict(f"the survey is open {opens.isoformat()} – {effective_deadline(closes).isoformat()} "
                       "23:59 Helsinki time")
    org_id = actor.organisation_id
    runner = runs_cycle(case, actor)
    if organisation_key is not None and runner:
        org_id = uow.session.execute(select(col(Organisation.id))
                                     .where(col(Organisation.key) == organisation_key)).scalar()
    org = uow.session.get(Organisation, org_id) if org_id else None
    director = runner or "signatory" in actor.roles
    if org is None or org.kind != "regional_council" or not director:
        raise NotPermitted("the survey is answered by the regional councils' directors")
    ratings: dict[str, int] = {}
    for key, value in data.ratings.items():
        if key not in QUESTIONS:
            raise InvalidInput(f"ratings.{key}", f"no such question; questions: {', '.join(QUESTIONS)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise InvalidInput(f"ratings.{key}", f"must be a whole number from 1 to 5, got {value!r}")
        ratings[key] = value
    missing = [q for q in QUESTIONS if q not in ratings]
    if missing:
        raise InvalidInput(f"ratings.{missing[0]}", "is required (rate every question 1-5)")
    version = int(uow.session.execute(select(func.coalesce(func.max(SurveyAnswer.version), 0)).where(
        col(SurveyAnswer.cycle_id) == cycle_id, col(SurveyAnswer.organisation_id) == org.id)).scalar_one()) + 1
    if replaces is not None and replaces != version - 1:
        raise Conflict(f"the council's answer is at version {version - 1}, not {replaces}",
                       message_id="cycle.error.survey_version", params={"version": version - 1})
    row = SurveyAnswer(cycle_id=cycle_id, organisation_id=org.id or 0, version=version, ratings=ratings,
                       comments=data.comments, respondent_id=actor.person_id, submitted_at=uow.now)
    uow.session.add(row)
    uow.session.flush()
    return row


def add_network_member(uow: UnitOfWork, network: str, person_id: int, actor: Actor) -> None:
    """Let a person report for a network (admin)."""
    if not actor.is_admin:
        raise NotPermitted("managing network members needs the admin role")
    if network not in NETWORKS:
        raise InvalidInput("network", f"unknown network {network!r}; networks: {', '.join(NETWORKS)}")
    if uow.session.get(Person, person_id) is None:
        raise InvalidInput("person_id", f"no person with id {person_id}")
    exists = uow.session.execute(select(col(NetworkMember.id)).where(col(NetworkMember.network) == network,
                                                                col(NetworkMember.person_id) == person_id)).first()
    if exists is None:
        uow.session.add(NetworkMember(network=network, person_id=person_id))
        uow.session.flush()


def set_survey_window(uow: UnitOfWork, cycle_id: int, opens: date, closes: date, actor: Actor,
                      expected_version: int | None = None) -> None:
    """Set the days the survey is open in one cycle (administrators; the definition's set_survey_window)."""
    case = cycle_case(uow, cycle_id)
    check_version(case, expected_version)
    if closes < opens:
        raise InvalidInput("survey_closes", f"{closes.isoformat()} is before the opening {opens.isoformat()}",
                           message_id="cycle.error.window_order")
    year = int(case.data["year"])
    for field, day in (("survey_opens", opens), ("survey_closes", closes)):
        if not date(year - 1, 1, 1) <= day <= date(year + 1, 12, 31):
            raise InvalidInput(field, f"{day.isoformat()} is not near the {year} cycle")
    uow.set_data(case, milestones={**case.data["milestones"], "survey_opens": opens.isoformat(),
                                   "survey_closes": closes.isoformat()})
    uow.fire(case.id, "set_survey_window", actor=actor, payload={"opens": opens.isoformat(),
                                                                 "closes": closes.isoformat()})
