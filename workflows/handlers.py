"""Route a generic `POST /cases/{id}/triggers/{trigger}` to the workflow service that owns the trigger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.actors import Actor
from engine.errors import InvalidInput
from engine.service import UnitOfWork
from workflows.agreement import service as agreement
from workflows.agreement.schemas import DecisionIn, DocumentIn, TerminateIn, WithdrawIn
from workflows.recurring_handlers import RECURRING_HANDLERS

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[UnitOfWork, int, Actor, dict[str, Any], int | None], Any]


def parse(model: type[M], payload: dict[str, Any]) -> M:
    """Validate a payload with a schema; raise InvalidInput naming the first bad field."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        raise InvalidInput(field, err["msg"]) from None


def _party_key(uow: UnitOfWork, case_id: int) -> tuple[int, str]:
    case = uow.case(case_id)
    return case.parent_id or 0, str(case.data.get("organisation_key", ""))


def _decide(outcome: str) -> Handler:
    def run(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
        parent_id, key = _party_key(uow, case_id)
        return agreement.decide(uow, parent_id, key, parse(DecisionIn, {**payload, "outcome": outcome}), actor)
    return run


def _sign(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
    if payload:
        raise InvalidInput(next(iter(payload)), "sign takes no payload")
    parent_id, key = _party_key(uow, case_id)
    return agreement.sign(uow, parent_id, key, actor)


HANDLERS: dict[tuple[str, str], Handler] = {
    ("agreement", "circulate"): lambda uow, cid, actor, p, v: agreement.circulate(uow, cid, actor, v),
    ("agreement", "revise"): lambda uow, cid, actor, p, v: agreement.revise(uow, cid, parse(DocumentIn, p), actor, v),
    ("agreement", "withdraw"): lambda uow, cid, actor, p, v: agreement.withdraw(uow, cid, parse(WithdrawIn, p), actor),
    ("agreement", "terminate"): lambda uow, cid, actor, p, v: agreement.terminate(
        uow, cid, parse(TerminateIn, p), actor),
    ("agreement_party", "approve"): _decide("approved"),
    ("agreement_party", "decline"): _decide("declined"),
    ("agreement_party", "sign"): _sign,
}
HANDLERS.update(RECURRING_HANDLERS)


def dispatch(uow: UnitOfWork, case_id: int, trigger: str, actor: Actor, payload: dict[str, Any],
             expected_version: int | None) -> Any:
    """Fire a trigger through its workflow's service, or through the engine when no service owns it."""
    case = uow.case(case_id)
    handler = HANDLERS.get((case.workflow, trigger))
    if handler is not None and trigger in uow.machine_of(case).allowed_triggers(case.state):
        if expected_version is not None and expected_version != case.version:
            from engine.errors import Conflict

            raise Conflict(f"case {case_id} is at version {case.version}, not {expected_version}; reload and retry")
        return handler(uow, case_id, actor, payload, expected_version)
    return uow.fire(case_id, trigger, actor=actor, payload=payload, expected_version=expected_version)
