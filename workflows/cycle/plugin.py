"""The annual follow-up plugin: the cycle, its report requests and the planner that creates cycles on schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.actors import Actor
from engine.errors import InvalidInput
from engine.plugin import WorkflowPlugin
from engine.service import UnitOfWork
from workflows.cycle import reports, service
from workflows.cycle.models import (
    AnnualReport,
    CycleReport,
    CycleSchedule,
    Measure,
    MeasureNote,
    NetworkMember,
    SurveyAnswer,
)
from workflows.cycle.schedule import PLANNER
from workflows.cycle.schemas import AgreeIn, CloseIn, MeasuresAdd, NoteIn, ReportIn
from workflows.triggers import child_key, parse


def _report(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, responsible = child_key(uow, cid, "responsible")
    return reports.submit_report(uow, parent, responsible, parse(ReportIn, p), actor)


def _note(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    rest = {k: v for k, v in p.items() if k != "measure_id"}
    measure_id = p.get("measure_id")
    if not isinstance(measure_id, int) or isinstance(measure_id, bool):
        raise InvalidInput("measure_id", "give the id of the measure to note on")
    return service.note(uow, cid, measure_id, parse(NoteIn, rest), actor)


PLUGIN = WorkflowPlugin(
    name="cycle",
    definitions={Path(__file__).resolve().parent: service.GUARDS},
    # the cycle's deadline moves to its next milestone before the report requests are opened
    listeners={service.CYCLE: (service.react_to_cycle, reports.react_to_cycle),
               PLANNER: (service.react_to_planner,)},
    recipients={name: reports.report_recipients for name in (service.CYCLE, service.REPORT, PLANNER)},
    triggers={
        ("cycle", "agree"): lambda uow, cid, a, p, v: service.agree(uow, cid, parse(AgreeIn, p), a),
        ("cycle", "close"): lambda uow, cid, a, p, v: service.close(uow, cid, parse(CloseIn, p).feedback, a),
        # the data-only steps go through their services too, so an event never stands without its rows
        ("cycle", "add_measures"): lambda uow, cid, a, p, v: service.add_later(
            uow, cid, parse(MeasuresAdd, p).measures, a),
        ("cycle", "note_measure"): _note,
        ("cycle_report", "report"): _report,
    },
    tables=(CycleSchedule, Measure, MeasureNote, CycleReport, SurveyAnswer, NetworkMember, AnnualReport),
)
