"""The task-specific agreement plugin: the link table, the listener that carries a framework's review and
termination to its task-specific agreements, and the service behind the agreement definition's own triggers."""

from __future__ import annotations

from engine.errors import InvalidInput
from engine.plugin import WorkflowPlugin
from workflows.agreement.cases import AGREEMENT
from workflows.task_agreement import service
from workflows.task_agreement.models import TaskAgreementLink
from workflows.task_agreement.schemas import ContinueIn, TaskAgreementCreate
from workflows.triggers import parse


def _start(uow, case_id, actor, payload, _v):  # type: ignore[no-untyped-def]
    if "task_agreement" in payload:
        raise InvalidInput("task_agreement", "is given by the engine: post the new agreement itself")
    return service.create_task_agreement(uow, case_id, parse(TaskAgreementCreate, payload), actor)[0]


PLUGIN = WorkflowPlugin(
    name="task_agreement",
    listeners={AGREEMENT: (service.react_to_agreement,)},
    triggers={
        (AGREEMENT, "start_task_agreement"): _start,
        (AGREEMENT, "continue_alone"): lambda uow, cid, actor, p, v: service.continue_alone(
            uow, cid, parse(ContinueIn, p), actor
        ),
    },
    tables=(TaskAgreementLink,),
)
