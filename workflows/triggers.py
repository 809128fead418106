"""Route a generic `POST /cases/{id}/triggers/{trigger}` to the workflow service that owns the trigger.

Each workflow's plugin lists its trigger handlers; the registry holds them. A trigger no service owns is fired
through the engine directly. `parse` and `child_key` are the small helpers those handler tables use.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.actors import Actor
from engine.errors import Conflict, InvalidInput
from engine.service import UnitOfWork

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], payload: dict[str, Any]) -> M:
    """Validate a payload with a schema; raise InvalidInput naming the first bad field."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        raise InvalidInput(field, err["msg"]) from None


def child_key(uow: UnitOfWork, case_id: int, key: str) -> tuple[int, str]:
    """Return a child case's parent id and one value of its data (the key its service addresses it by)."""
    case = uow.case(case_id)
    return case.parent_id or 0, str(case.data.get(key, ""))


def dispatch(uow: UnitOfWork, case_id: int, trigger: str, actor: Actor, payload: dict[str, Any],
             expected_version: int | None) -> Any:
    """Fire a trigger through its workflow's service, or through the engine when no service owns it."""
    case = uow.case(case_id)
    handler = uow.registry.trigger_handler(case.workflow, trigger)
    if handler is not None and trigger in uow.machine_of(case).allowed_triggers(case.state):
        if expected_version is not None and expected_version != case.version:
            raise Conflict(f"case {case_id} is at version {case.version}, not {expected_version}; reload and retry")
        return handler(uow, case_id, actor, payload, expected_version)
    return uow.fire(case_id, trigger, actor=actor, payload=payload, expected_version=expected_version)
