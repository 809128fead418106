"""Who may do what on an annual cycle, as a table: (step, actor) -> done | NotPermitted, with nothing written on a
refusal; and the deadline of each state read from the definition's until_<milestone> tags.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from engine.errors import NotPermitted
from engine.models import Case, Event
from engine.service import UnitOfWork
from tests.support.builders import make_user
from workflows.cycle import reports, service
from workflows.cycle.models import NETWORKS, Measure
from workflows.cycle.schemas import AgreeIn, CycleCreate, MeasureIn, NoteIn

MEASURE = MeasureIn(title="Ilmastotiekartta", theme="climate", responsible="regional_council:06",
                    due_date=date(2026, 6, 30))
STEPS: dict[str, Callable[[UnitOfWork, int, int, Any], object]] = {
    "add": lambda uow, cid, mid, a: service.add_later(uow, cid, [MEASURE], a),
    "edit": lambda uow, cid, mid, a: service.edit_measure(uow, cid, mid, MEASURE.model_copy(
        update={"title": "Muutettu"}), a),
    "note": lambda uow, cid, mid, a: service.note(uow, cid, mid, NoteIn(status="ongoing", text="Aloitettu"), a),
    "request": lambda uow, cid, mid, a: reports.request_report(uow, cid, f"network:{NETWORKS[a.person_id % 4]}",
                                                               date(2027, 1, 15), a),
    "window": lambda uow, cid, mid, a: reports.set_survey_window(uow, cid, date(2026, 3, 2), date(2026, 3, 31), a),
}
# who may: the cycle's own coordinator and administrators run it; the measure's council notes on it
TABLE = {
    "add": {"coordinator", "admin"},
    "edit": {"coordinator", "admin"},
    "note": {"coordinator", "admin", "council_staff"},
    "request": {"coordinator", "admin"},
    "window": {"admin"},
}
ACTORS = ("coordinator", "other_coordinator", "admin", "council_staff", "other_council")


def _counts(ctx) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as s:
        return tuple(int(s.execute(select(func.count()).select_from(m)).scalar_one())  # type: ignore[return-value]
                     for m in (Measure, Event, Case))


@pytest.mark.parametrize("step", list(STEPS))
def test_who_may_take_each_step(ctx, step: str) -> None:
    people = {"coordinator": make_user(ctx, org_key="association:kuntaliitto", roles="coordinator"),
              "other_coordinator": make_user(ctx, org_key="regional_council:02", roles="coordinator"),
              "admin": make_user(ctx, roles="admin"),
              "council_staff": make_user(ctx, org_key="regional_council:06", roles=""),
              "other_council": make_user(ctx, org_key="regional_council:02")}
    cycle = ctx.engine.run(lambda uow: service.create_cycle(uow, CycleCreate(year=2026),
                                                            people["coordinator"].actor)).id
    ctx.engine.run(lambda uow: service.agree(uow, cycle, AgreeIn(measures=[MEASURE]), people["coordinator"].actor))
    with Session(ctx.db.engine) as s:
        mid = s.execute(select(Measure.id).where(Measure.cycle_id == cycle)).scalar_one()
    for who in ACTORS:
        before = _counts(ctx)
        if who in TABLE[step]:
            ctx.engine.run(lambda uow, who=who: STEPS[step](uow, cycle, mid, people[who].actor))
            assert _counts(ctx) != before, (step, who)
        else:
            with pytest.raises(NotPermitted):
                ctx.engine.run(lambda uow, who=who: STEPS[step](uow, cycle, mid, people[who].actor))
            assert _counts(ctx) == before, (step, who)


def test_each_state_counts_to_the_milestone_its_tag_names(ctx) -> None:
    coordinator = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    cycle = ctx.engine.run(lambda uow: service.create_cycle(uow, CycleCreate(year=2027), coordinator.actor)).id
    measure = MEASURE.model_copy(update={"due_date": date(2027, 6, 30)})

    def deadline() -> tuple[str, date | None]:
        with Session(ctx.db.engine) as s:
            case = s.get(Case, cycle)
            assert case is not None
            return case.state, case.deadline

    assert deadline() == ("planning", date(2026, 10, 15))  # until_planning_meeting
    with pytest.raises(Exception, match="at least one measure"):  # the has_measures guard of `agree`
        ctx.engine.run(lambda uow: uow.fire(cycle, "agree", actor=coordinator.actor, payload={"measures": 0}))
    ctx.engine.run(lambda uow: service.agree(uow, cycle, AgreeIn(measures=[measure]), coordinator.actor))
    assert deadline() == ("agreed", date(2026, 12, 31))  # until_eve_of_year_start: the business day before 1.1.
    ctx.clock.set(datetime(2026, 12, 31, 22, tzinfo=UTC))
    ctx.tick()
    assert deadline() == ("in_progress", date(2027, 11, 1))  # until_eve_of_reporting_opens (Tue 2.11.2027)
    ctx.clock.set(datetime(2027, 11, 1, 22, tzinfo=UTC))
    ctx.tick()
    assert deadline() == ("reporting", date(2028, 1, 15))  # until_reporting_closes (a Saturday, moved when shown)
    ctx.clock.set(datetime(2028, 1, 17, 22, tzinfo=UTC))
    ctx.tick()
    assert deadline() == ("review", date(2028, 3, 31))  # until_annual_report_due
