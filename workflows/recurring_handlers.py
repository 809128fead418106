"""Generic-trigger routes (`POST /cases/{id}/triggers/{t}`) for nominations, cycles and reviews to their services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.actors import Actor
from engine.errors import InvalidInput
from engine.service import UnitOfWork
from workflows.cycle import reports as cycle_reports
from workflows.cycle import service as cycle
from workflows.cycle.schemas import AgreeIn, CloseIn, ReportIn
from workflows.nomination import appointments
from workflows.nomination import service as nomination
from workflows.nomination.schemas import CancelIn, DecisionIn, ProposalIn, ReplacementIn, WaiveIn
from workflows.review import service as review
from workflows.review.schemas import ConfirmIn, ReviseIn

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[UnitOfWork, int, Actor, dict[str, Any], int | None], Any]


def _parse(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInput(".".join(str(p) for p in err["loc"]) or "payload", err["msg"]) from None


def _child(uow: UnitOfWork, case_id: int, key: str) -> tuple[int, str]:
    case = uow.case(case_id)
    return case.parent_id or 0, str(case.data.get(key, ""))


def _propose(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, org = _child(uow, cid, "organisation_key")
    return nomination.propose(uow, parent, org, _parse(ProposalIn, p), actor)


def _waive(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, org = _child(uow, cid, "organisation_key")
    return nomination.waive(uow, parent, org, _parse(WaiveIn, p), actor)


def _report(uow: UnitOfWork, cid: int, actor: Actor, p: dict[str, Any], _v: int | None) -> Any:
    parent, responsible = _child(uow, cid, "responsible")
    return cycle_reports.submit_report(uow, parent, responsible, _parse(ReportIn, p), actor)


RECURRING_HANDLERS: dict[tuple[str, str], Handler] = {
    ("nomination", "decide"): lambda uow, cid, a, p, v: appointments.decide(uow, cid, _parse(DecisionIn, p), a),
    ("nomination", "communicate"): lambda uow, cid, a, p, v: appointments.communicate(uow, cid, a),
    ("nomination", "replace_member"): lambda uow, cid, a, p, v: appointments.replace(
        uow, cid, _parse(ReplacementIn, p), a),
    ("nomination", "cancel"): lambda uow, cid, a, p, v: nomination.cancel(uow, cid, _parse(CancelIn, p), a),
    ("nomination_proposal", "propose"): _propose,
    ("nomination_proposal", "waive"): _waive,
    ("cycle", "agree"): lambda uow, cid, a, p, v: cycle.agree(uow, cid, _parse(AgreeIn, p), a),
    ("cycle", "close"): lambda uow, cid, a, p, v: cycle.close(uow, cid, _parse(CloseIn, p).feedback, a),
    ("cycle_report", "report"): _report,
    ("review", "confirm_unchanged"): lambda uow, cid, a, p, v: review.confirm_unchanged(
        uow, cid, _parse(ConfirmIn, p), a),
    ("review", "revise"): lambda uow, cid, a, p, v: review.revise(uow, cid, _parse(ReviseIn, p), a),
}
