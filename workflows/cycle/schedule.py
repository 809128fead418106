"""The administrators' yearly schedule: milestone dates per cycle year and the planner case that creates cycles."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.calendar import previous_business_day
from engine.errors import InvalidInput, NotPermitted
from engine.models import Person
from engine.records import CaseRow
from engine.service import UnitOfWork
from workflows.common.dates import set_deadline, today
from workflows.cycle.models import CycleSchedule
from workflows.cycle.schemas import DEFAULT_MILESTONES, MILESTONES, ScheduleIn

PLANNER = "cycle_planner"
ORDER = [("reporting_opens", "reporting_closes"), ("survey_opens", "survey_closes"),
         ("cycle_created", "planning_meeting"), ("reporting_closes", "annual_report_due")]


def milestone_date(milestones: dict[str, Any], name: str, year: int) -> date:
    """Return the date of a milestone in the cycle of `year`; raise InvalidInput for a day the month lacks."""
    m = milestones[name]
    try:
        return date(year + int(m.get("year_offset", 0)), int(m["month"]), int(m["day"]))
    except ValueError:
        raise InvalidInput(name, f"{m['day']}.{m['month']}. is not a date") from None


def cycle_dates(milestones: dict[str, Any], year: int) -> dict[str, date]:
    """Return every milestone's date for the cycle of `year`."""
    return {name: milestone_date(milestones, name, year) for name in MILESTONES}


def eve(d: date) -> date:
    """Return the last business day before d: a deadline timer ending then fires as the day d begins."""
    return previous_business_day(d - timedelta(days=1))


def read_schedule(session: Session, now: datetime) -> CycleSchedule:
    """Return the schedule row, or (unsaved) the defaults when none has been set."""
    row = session.execute(select(CycleSchedule).where(col(CycleSchedule.name) == "default")).scalars().first()
    return row or CycleSchedule(name="default", milestones=dict(DEFAULT_MILESTONES), updated_at=now)


def get_schedule(uow: UnitOfWork) -> CycleSchedule:
    """Return the schedule row, creating it with the defaults."""
    row = uow.session.execute(select(CycleSchedule).where(col(CycleSchedule.name) == "default")).scalars().first()
    if row is None:
        row = CycleSchedule(name="default", milestones=dict(DEFAULT_MILESTONES), updated_at=uow.now)
        uow.session.add(row)
        uow.session.flush()
    return row


def next_cycle_year(milestones: dict[str, Any], on: date) -> int:
    """Return the year of the next cycle to create on or after `on`."""
    year = on.year
    while milestone_date(milestones, "cycle_created", year) < on:
        year += 1
    return year


def set_schedule(uow: UnitOfWork, data: ScheduleIn, actor: Actor) -> CycleSchedule:
    """Change the schedule (admin); the planner case's timer moves to the next creation date."""
    if not actor.is_admin:
        raise NotPermitted("changing the annual schedule needs the admin role")
    row = get_schedule(uow)
    changes = data.model_dump(exclude_unset=True, exclude={"coordinator_id"})
    milestones = {**row.milestones, **{k: v for k, v in changes.items() if v is not None}}
    year = today(uow).year + 1
    dates = cycle_dates(milestones, year)
    for first, second in ORDER:
        if dates[first] >= dates[second]:
            raise InvalidInput(second, f"must come after {first} ({dates[first].isoformat()} for the {year} cycle, "
                               f"{second} would be {dates[second].isoformat()})")
    if "coordinator_id" in data.model_fields_set:
        if data.coordinator_id is not None and uow.session.get(Person, data.coordinator_id) is None:
            raise InvalidInput("coordinator_id", f"no person with id {data.coordinator_id}")
        row.coordinator_id = data.coordinator_id
    row.milestones = milestones
    row.updated_at = uow.now
    uow.session.add(row)
    uow.session.flush()
    if row.case_id is None:
        ensure_planner(uow, row, actor)  # armed for the next creation date as it is created
    else:
        uow.fire(row.case_id, "reschedule", actor=actor)  # the reaction re-arms under this new event
    return row


def ensure_planner(uow: UnitOfWork, schedule: CycleSchedule, actor: Actor) -> CaseRow:
    """Return the schedule's planner case, creating it (armed for the next creation date) if needed."""
    if schedule.case_id is not None:
        return uow.case(schedule.case_id)
    year = next_cycle_year(schedule.milestones, today(uow))
    case = uow.create_case(PLANNER, actor=actor, title="Vuosiseurannan aikataulu",
                           coordinator_id=schedule.coordinator_id,
                           deadline=eve(milestone_date(schedule.milestones, "cycle_created", year)),
                           data={"next_year": year})
    schedule.case_id = case.id
    uow.session.add(schedule)
    uow.session.flush()
    return case


def reschedule_planner(uow: UnitOfWork, planner: CaseRow, schedule: CycleSchedule, after: date | None = None) -> None:
    """Point the planner at the next creation date and re-arm its timer.

    Only for a planner whose current timers were armed by an earlier event: re-arming under the same event
    would repeat the timers' dedupe keys.
    """
    from engine import timers  # the engine's timer rows; imported late to keep this module light

    year = next_cycle_year(schedule.milestones, after or today(uow))
    set_deadline(uow, planner, eve(milestone_date(schedule.milestones, "cycle_created", year)))
    uow.set_data(planner, next_year=year)
    timers.rearm(uow, planner, "schedule changed")
