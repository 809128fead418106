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
from workflows.cycle.models import NETWORKS, UNFINISHED, Measure, MeasureNote
from workflows.cycle.schedule import cycle_dates, eve, get_schedule, milestone_date, reschedule_planner
from workflows.cycle.schemas import AgreeIn, CycleCreate, MeasureIn, NoteIn
from workflows.cycle.who import runs_cycle, speaks_for

CYCLE = "cycle"
REPORT = "cycle_report"


def is_cycle_manager(actor: Actor) -> bool:
    """Tell whether the actor may create cycles (coordinators and administrators)."""
    return actor.is_admin or "coordinator" in actor.roles


def require_runner(case: CaseRow, actor: Actor, action: str) -> None:
    """Refuse (403) anyone but the cycle's coordinator and administrators."""
    if not runs_cycle(case, actor):
        raise NotPermitted(f"{action} needs the cycle's own coordinator or an administrator", case_id=case.id,
                           action=action, message_id="cycle.error.not_runner",
                           params={"year": case.data.get("year", "")})


def check_version(case: CaseRow, expected: int | None) -> None:
    """Refuse a form sent against an older version of the cycle (a double submit, or a change in between)."""
    if expected is not None and expected != case.version:
        raise Conflict(f"case {case.id} is at version {case.version}, not {expected}; reload and retry",
                       message_id="error.stale_version", params={"version": case.version, "expected": expected})


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


UNTIL = "until_"
EVE_OF = "eve_of_"


def state_deadline(uow: UnitOfWork, case: CaseRow, state: str) -> date | None:
    """Return the date a state's timers count to, as its definition's `until_<milestone>` tag names it."""
    spec = uow.machine_of(case).definition.states.get(state)
    tag = next((t for t in (spec.tags if spec else []) if t.startswith(UNTIL)), None)
    if tag is None:
        return None
    name = tag.removeprefix(UNTIL)
    before = name.startswith(EVE_OF)
    name = name.removeprefix(EVE_OF)
    if name == "year_start":
        on = date(int(case.data["year"]), 1, 1)
    else:
        on = date.fromisoformat(case.data["milestones"][name])
    return eve(on) if before else on


def _has_measures(ctx: Any) -> bool:
    """Guard of `agree`: a plan is agreed only with measures (asked on a read session too, for the button)."""
    found = ctx.uow.session.execute(select(col(Measure.id)).where(col(Measure.cycle_id) == ctx.case.id)
                                    .limit(1)).first()
    if found is None:
        return bool(ctx.refuse("agree at least one measure", "cycle.error.no_measures"))
    return True


GUARDS = {"has_measures": _has_measures}


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


def agree(uow: UnitOfWork, cycle_id: int, data: AgreeIn, actor: Actor,
          expected_version: int | None = None) -> list[Measure]:
    """Record the measures the planning meeting agreed; the year starts on 1 January (at once if it has)."""
    case = cycle_case(uow, cycle_id)
    check_version(case, expected_version)
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


def add_later(uow: UnitOfWork, cycle_id: int, measures: list[MeasureIn], actor: Actor,
              expected_version: int | None = None) -> list[Measure]:
    """Add measures to a cycle in planning or running (its coordinator or an administrator)."""
    case = cycle_case(uow, cycle_id)
    require_runner(case, actor, "add_measures")
    check_version(case, expected_version)
    if not uow.may(case, "add_measures"):
        if uow.may(case, "agree"):
            raise wrong_state(uow, case, "add_measures", f"the cycle is {case.state}: agree the measures first",
                              "cycle.error.agree_first")
        raise wrong_state(uow, case, "add_measures", f"the cycle is {case.state}: a closed cycle takes no new "
                          "measures", "cycle.error.no_new_measures")
    rows = add_measures(uow, case, measures)
    uow.fire(case.id, "add_measures", actor=actor, payload={"measures": len(rows)})
    return rows


def edit_measure(uow: UnitOfWork, cycle_id: int, measure_id: int, data: MeasureIn, actor: Actor,
                 expected_version: int | None = None) -> Measure:
    """Change a measure's title, theme, responsible or due date (the cycle's coordinator or an administrator)."""
    case = cycle_case(uow, cycle_id)
    require_runner(case, actor, "edit_measure")
    check_version(case, expected_version)
    if not uow.may(case, "edit_measure"):
        raise wrong_state(uow, case, "edit_measure", f"the cycle is {case.state}: its measures are kept as they "
                          "were", "cycle.error.no_new_measures")
    m = measure_of(uow, cycle_id, measure_id)
    year = int(case.data["year"])
    responsible = check_responsible(uow, data.responsible, "responsible")
    if not date(year - 1, 1, 1) <= data.due_date <= date(year + 1, 12, 31):
        raise InvalidInput("due_date", f"{data.due_date.isoformat()} is not near the {year} cycle")
    new = {"title": data.title, "theme": data.theme, "responsible": responsible, "due_date": data.due_date}
    changed = [k for k, v in new.items() if getattr(m, k) != v]
    for k, v in new.items():
        setattr(m, k, v)
    uow.session.add(m)
    uow.session.flush()
    uow.fire(case.id, "edit_measure", actor=actor, payload={"measure_id": m.id, "changed": changed})
    return m


def remove_measure(uow: UnitOfWork, cycle_id: int, measure_id: int, actor: Actor,
                   expected_version: int | None = None) -> str:
    """Drop a measure from the plan before it is agreed; return its title. Later, a measure is noted as dropped."""
    case = cycle_case(uow, cycle_id)
    require_runner(case, actor, "remove_measure")
    check_version(case, expected_version)
    if not uow.may(case, "remove_measure"):
        raise wrong_state(uow, case, "remove_measure", f"the cycle is {case.state}: an agreed measure is not "
                          "removed, note it as dropped", "cycle.error.drop_by_note")
    m = measure_of(uow, cycle_id, measure_id)
    title = m.title
    for note_row in uow.session.execute(select(MeasureNote).where(col(MeasureNote.measure_id) == m.id)).scalars():
        uow.session.delete(note_row)
    uow.session.delete(m)
    uow.session.flush()
    uow.fire(case.id, "remove_measure", actor=actor, payload={"measure_id": measure_id, "title": title})
    return title


def measure_of(uow: UnitOfWork, cycle_id: int, measure_id: int, field: str = "measure_id") -> Measure:
    """Return a cycle's measure or raise InvalidInput naming the field."""
    m = uow.session.get(Measure, measure_id)
    if m is None or m.cycle_id != cycle_id:
        raise InvalidInput(field, f"no measure {measure_id} in this cycle")
    return m


def may_speak_for(uow: UnitOfWork, actor: Actor, responsible: str, cycle: CaseRow | None = None) -> bool:
    """Tell whether the actor may report for a responsible: its own staff, or who runs the cycle."""
    return speaks_for(uow.session, actor, responsible, cycle)


def note(uow: UnitOfWork, cycle_id: int, measure_id: int, data: NoteIn, actor: Actor,
         report_id: int | None = None, expected_version: int | None = None) -> MeasureNote:
    """Record a dated status note on a measure and set its status (who runs the cycle, or the responsible)."""
    case = cycle_case(uow, cycle_id)
    check_version(case, expected_version)
    if not uow.may(case, "note_measure"):
        raise wrong_state(uow, case, "note_measure", f"measures are followed while the cycle runs; it is {case.state}",
                          "cycle.error.notes_while_running")
    m = measure_of(uow, cycle_id, measure_id)
    if not may_speak_for(uow, actor, m.responsible, case):
        raise NotPermitted(f"measure {m.id} is {m.responsible}'s; you may not note on it", case_id=case.id,
                           action="note_measure", message_id="cycle.error.not_responsible")
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
    set_deadline(uow, case, state_deadline(uow, case, record.to_state))
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
    require_runner(case, actor, "close")
    if not uow.may(case, "close"):
        raise wrong_state(uow, case, "close", f"a cycle is closed after its review; the {case.data['year']} cycle "
                          f"is {case.state}", "cycle.error.close_after_review")
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
