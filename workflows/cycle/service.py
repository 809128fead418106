"""Annual cycles: create (by hand or on schedule), agree and follow measures, milestones, close and carry over."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.models import Case, Organisation, Person
from engine.records import CaseRow, TransitionRecord
from engine.service import UnitOfWork, actor_roles
from workflows.common.dates import set_deadline, today
from workflows.cycle.annual_report import store_report
from workflows.cycle.models import NETWORKS, UNFINISHED, Measure, MeasureNote, NetworkMember
from workflows.cycle.schedule import cycle_dates, eve, get_schedule, milestone_date, reschedule_planner
from workflows.cycle.schemas import AgreeIn, CycleCreate, MeasureIn, NoteIn

CYCLE = "cycle"
REPORT = "cycle_report"


def is_cycle_manager(actor: Actor) -> bool:
    """Tell whether the actor may run cycles (coordinators and administrators)."""
    return actor.is_admin or "coordinator" in actor.roles


def cycle_case(uow: UnitOfWork, cycle_id: int) -> CaseRow:
    """Return a locked cycle case or raise NotFound."""
    case = uow.case(cycle_id)
    if case.workflow != CYCLE:
        raise NotFound(f"case {cycle_id} is not an annual cycle")
    return case


def wrong_state(uow: UnitOfWork, case: CaseRow, trigger: str, detail: str, message_id: str) -> Conflict:
    """Return the refusal of a step the definition does not allow in the case's state (a message id, its params)."""
    return Conflict(detail, allowed=uow.machine_of(case).allowed_triggers(case.state), message_id=message_id,
                    params={"workflow": case.workflow, "state": case.state, "trigger": trigger})


def acting(uow: UnitOfWork, case: CaseRow, actor: Actor) -> Actor:
    """Return who fires a data-only step: the actor when they hold a role on the case, else the engine for them."""
    return actor if actor_roles(uow, case, actor) & {"coordinator", "admin", "system"} else SYSTEM


def find_cycle(uow: UnitOfWork, year: int) -> int | None:
    """Return the id of the cycle of a year, if there is one."""
    ids = uow.session.execute(select(col(Case.id), col(Case.data)).where(col(Case.workflow) == CYCLE)).all()
    return next((i for i, data in ids if int(data.get("year", 0)) == year), None)


def state_deadline(case: CaseRow, state: str) -> date | None:
    """Return the date a state's timers count to: always the cycle's next milestone."""
    m = {k: date.fromisoformat(v) for k, v in case.data["milestones"].items()}
    return {"planning": m["planning_meeting"], "agreed": eve(date(int(case.data["year"]), 1, 1)),
            "in_progress": eve(m["reporting_opens"]), "reporting": m["reporting_closes"],
            "review": m["annual_report_due"]}.get(state)


def create_cycle(uow: UnitOfWork, data: CycleCreate, actor: Actor) -> CaseRow:
    """Create the cycle of a year from the schedule; carry over what the previous year left unfinished."""
    if not actor.is_system and not is_cycle_manager(actor):
        raise NotPermitted("creating an annual cycle needs the coordinator or admin role")
    if find_cycle(uow, data.year) is not None:
        raise Conflict(f"the {data.year} cycle already exists")
    schedule = get_schedule(uow)
    coordinator_id = data.coordinator_id or schedule.coordinator_id or actor.person_id
    if coordinator_id is not None and uow.session.get(Person, coordinator_id) is None:
        raise InvalidInput("coordinator_id", f"no person with id {coordinator_id}")
    dates = cycle_dates(schedule.milestones, data.year)
    milestones = {k: v.isoformat() for k, v in dates.items()}
    case = uow.create_case(CYCLE, actor=actor, title=f"Vuosiseuranta {data.year}", coordinator_id=coordinator_id,
                           deadline=dates["planning_meeting"], data={"year": data.year, "milestones": milestones},
                           payload={"year": data.year})
    previous = find_cycle(uow, data.year - 1)
    if previous is not None and _ended(uow, uow.case(previous)):
        carry_over(uow, previous, case.id)
    return case


def _ended(uow: UnitOfWork, case: CaseRow) -> bool:
    return uow.machine_of(case).definition.is_final(case.state)


# -- measures --------------------------------------------------------------------------------------------


def check_responsible(uow: UnitOfWork, key: str, field: str) -> str:
    """Return a known responsible (an active organisation's kind:code or network:<name>); else InvalidInput."""
    if key.startswith("network:"):
        if key.removeprefix("network:") not in NETWORKS:
            raise InvalidInput(field, f"unknown network {key!r}; networks: "
                               + ", ".join(f"network:{n}" for n in NETWORKS))
        return key
    found = uow.session.execute(select(col(Organisation.id)).where(col(Organisation.key) == key,
                                                              col(Organisation.active).is_(True))).scalar()
    if found is None:
        raise InvalidInput(field, f"unknown responsible organisation {key!r} (use kind:code, e.g. "
                           "regional_council:06, or network:alke)")
    return key


def add_measures(uow: UnitOfWork, case: CaseRow, measures: list[MeasureIn], field: str = "measures") -> list[Measure]:
    """Validate and add measures to a cycle, numbered after the existing ones."""
    year = int(case.data["year"])
    start = uow.session.execute(select(func.coalesce(func.max(Measure.number), 0))
                                .where(col(Measure.cycle_id) == case.id)).scalar_one()
    rows = []
    for i, m in enumerate(measures):
        responsible = check_responsible(uow, m.responsible, f"{field}[{i}].responsible")
        if not date(year - 1, 1, 1) <= m.due_date <= date(year + 1, 12, 31):
            raise InvalidInput(f"{field}[{i}].due_date", f"{m.due_date.isoformat()} is not near the {year} cycle")
        rows.append(Measure(cycle_id=case.id, number=start + i + 1, title=m.title, theme=m.theme,
                            responsible=responsible, due_date=m.due_date, created_at=uow.now))
    uow.session.add_all(rows)
    uow.session.flush()
    return rows


def agree(uow: UnitOfWork, cycle_id: int, data: AgreeIn, actor: Actor) -> list[Measure]:
    """Record the measures the planning meeting agreed; the year starts on 1 January (at once if it has)."""
    case = cycle_case(uow, cycle_id)
    if not uow.may(case, "agree"):
        raise wrong_state(uow, case, "agree", f"the {case.data['year']} cycle is {case.state}; measures are agreed "
                          "in planning (add later ones with POST /cycles/{id}/measures)",
                          "cycle.error.agree_in_planning")
    rows = add_measures(uow, case, data.measures)
    total = uow.session.execute(select(func.count()).select_from(Measure)
                                .where(col(Measure.cycle_id) == case.id)).scalar_one()
    if not total:
        raise InvalidInput("measures", "agree at least one measure")
    payload: dict[str, Any] = {"measures": total}
    if data.meeting_date:
        payload["meeting_date"] = data.meeting_date.isoformat()
    uow.fire(case.id, "agree", actor=actor, payload=payload)
    if today(uow).year >= int(case.data["year"]):
        uow.fire(case.id, "start_year", actor=actor)
    return rows


def add_later(uow: UnitOfWork, cycle_id: int, measures: list[MeasureIn], actor: Actor) -> list[Measure]:
    """Add measures to an agreed or running cycle."""
    case = cycle_case(uow, cycle_id)
    if not is_cycle_manager(actor):
        raise NotPermitted("adding measures needs the coordinator or admin role")
    if not uow.may(case, "add_measures"):
        if uow.may(case, "agree"):
            raise wrong_state(uow, case, "add_measures", f"the cycle is {case.state}: agree the measures first",
                              "cycle.error.agree_first")
        raise wrong_state(uow, case, "add_measures", f"the cycle is {case.state}: a closed cycle takes no new "
                          "measures", "cycle.error.no_new_measures")
    rows = add_measures(uow, case, measures)
    who = acting(uow, case, actor)
    payload: dict[str, Any] = {"measures": len(rows)}
    if who is not actor and actor.person_id is not None:
        payload["added_by"] = actor.person_id
    uow.fire(case.id, "add_measures", actor=who, payload=payload)
    return rows


def measure_of(uow: UnitOfWork, cycle_id: int, measure_id: int, field: str = "measure_id") -> Measure:
    """Return a cycle's measure or raise InvalidInput naming the field."""
    m = uow.session.get(Measure, measure_id)
    if m is None or m.cycle_id != cycle_id:
        raise InvalidInput(field, f"no measure {measure_id} in this cycle")
    return m


def may_speak_for(uow: UnitOfWork, actor: Actor, responsible: str) -> bool:
    """Tell whether the actor may report for a responsible organisation or network."""
    if is_cycle_manager(actor):
        return True
    if responsible.startswith("network:"):
        return uow.session.execute(select(col(NetworkMember.id)).where(
            col(NetworkMember.network) == responsible.removeprefix("network:"),
            col(NetworkMember.person_id) == actor.person_id)).first() is not None
    key = uow.session.execute(select(col(Organisation.key))
                              .where(col(Organisation.id) == actor.organisation_id)).scalar()
    return key == responsible


def note(uow: UnitOfWork, cycle_id: int, measure_id: int, data: NoteIn, actor: Actor,
         report_id: int | None = None) -> MeasureNote:
    """Record a dated status note on a measure and set its status."""
    case = cycle_case(uow, cycle_id)
    if not uow.may(case, "note_measure"):
        raise wrong_state(uow, case, "note_measure", f"measures are followed while the cycle runs; it is {case.state}",
                          "cycle.error.notes_while_running")
    m = measure_of(uow, cycle_id, measure_id)
    if not may_speak_for(uow, actor, m.responsible):
        raise NotPermitted(f"measure {m.id} is {m.responsible}'s; you may not note on it")
    noted_on = data.noted_on or today(uow)
    if noted_on > today(uow):
        raise InvalidInput("noted_on", f"{noted_on.isoformat()} is in the future")
    row = MeasureNote(measure_id=m.id or 0, noted_on=noted_on, status=data.status, text=data.text,
                      report_id=report_id, author_id=actor.person_id, created_at=uow.now)
    m.status = data.status
    uow.session.add_all([m, row])
    uow.session.flush()
    who = acting(uow, case, actor)
    payload: dict[str, Any] = {"measure_id": m.id, "status": data.status}
    if report_id is not None:
        payload["report_id"] = report_id
    if who is not actor and actor.person_id is not None:
        payload["noted_by"] = actor.person_id
    uow.fire(case.id, "note_measure", actor=who, payload=payload)
    return row


# -- milestones, closing and carrying over --------------------------------------------------------------------


def react_to_cycle(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on cycle cases: move the deadline to the next milestone; close the children with it."""
    case = record.case
    if not record.changed_state:
        return
    set_deadline(uow, case, state_deadline(case, record.to_state))
    if _ended(uow, case):  # an ended cycle takes no more reports
        for child in uow.children(case.id):
            if uow.may(child, "close"):
                uow.fire(child.id, "close", actor=SYSTEM)


def react_to_planner(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener on the planner case: create the next year's cycle on schedule; follow a new schedule."""
    case = record.case
    if record.trigger == "create_cycle":
        year = int(case.data["next_year"])
        if find_cycle(uow, year) is None:
            create_cycle(uow, CycleCreate(year=year), SYSTEM)
        schedule = get_schedule(uow)
        created_on = milestone_date(schedule.milestones, "cycle_created", year)
        reschedule_planner(uow, case, schedule, after=max(created_on, today(uow)) + timedelta(days=1))
    elif record.trigger == "reschedule":
        reschedule_planner(uow, case, get_schedule(uow))


def carry_over(uow: UnitOfWork, from_id: int, to_id: int) -> int:
    """Copy the unfinished measures of one cycle to the next (once each); return how many were copied."""
    done = {i for (i,) in uow.session.execute(select(col(Measure.carried_from_id)).where(
        col(Measure.cycle_id) == to_id, col(Measure.carried_from_id).is_not(None)))}
    target = uow.case(to_id)
    year = int(target.data["year"])
    rows = [m for m in uow.session.execute(select(Measure).where(
        col(Measure.cycle_id) == from_id, col(Measure.status).in_(UNFINISHED)).order_by(col(Measure.number))).scalars()
        if m.id not in done]
    start = uow.session.execute(select(func.coalesce(func.max(Measure.number), 0))
                                .where(col(Measure.cycle_id) == to_id)).scalar_one()
    copies = [Measure(cycle_id=to_id, number=start + i + 1, title=m.title, theme=m.theme, responsible=m.responsible,
                      due_date=max(m.due_date, date(year, 12, 31)) if m.due_date.year < year else m.due_date,
                      status=m.status, carried_from_id=m.id, created_at=uow.now) for i, m in enumerate(rows)]
    uow.session.add_all(copies)
    uow.session.flush()
    return len(copies)


def close(uow: UnitOfWork, cycle_id: int, feedback: str, actor: Actor) -> tuple[int, str]:
    """Close a reviewed cycle with its annual report; carry the unfinished measures to the next year's cycle."""
    case = cycle_case(uow, cycle_id)
    if not uow.may(case, "close"):
        raise wrong_state(uow, case, "close", f"a cycle is closed after its review; the {case.data['year']} cycle "
                          f"is {case.state}", "cycle.error.close_after_review")
    if not is_cycle_manager(actor):
        raise NotPermitted("closing a cycle needs the coordinator or admin role")
    uow.set_data(case, feedback=feedback)
    report = store_report(uow, case)
    year = int(case.data["year"])
    next_id = find_cycle(uow, year + 1)
    if next_id is None:
        next_id = create_cycle(uow, CycleCreate(year=year + 1, coordinator_id=case.coordinator_id), SYSTEM).id
    carried = carry_over(uow, case.id, next_id)
    uow.fire(case.id, "close", actor=actor, payload={"feedback": feedback, "report_sha256": report.sha256,
                                                     "carried_over": carried})
    return next_id, report.sha256
