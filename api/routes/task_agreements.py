"""Task-specific agreements on a framework agreement: start one, list both directions, confirm, continue alone.

A task-specific agreement is an agreement: its text, decisions, signatures, withdrawal and termination go
through `/agreements/{id}/...` like any other. These routes add what the link to its framework brings.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.access import readable_case
from api.deps import ActorDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.errors import NotFound
from workflows.agreement.read import read_agreement
from workflows.agreement.schemas import AgreementRead
from workflows.task_agreement import service
from workflows.task_agreement.read import framework_of, task_agreements_of
from workflows.task_agreement.schemas import (
    ContinueIn,
    FrameworkRef,
    TaskAgreementCreate,
    TaskAgreementCreated,
    TaskAgreementSummary,
)

router = APIRouter(tags=["task-agreements"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


@router.post(
    "/agreements/{framework_id}/task-agreements",
    response_model=TaskAgreementCreated,
    status_code=status.HTTP_201_CREATED,
)
def create(
    framework_id: int,
    body: TaskAgreementCreate,
    work: WorkDep,
    session: SessionDep,
    actor: ActorDep,
    response: Response,
) -> TaskAgreementCreated:
    """Start a task-specific agreement in draft on a framework agreement in force (its coordinator or an admin).

    Parties that are not parties of the framework are accepted and listed in `warnings` (also recorded); a
    framework not in force, an empty party list, an unknown organisation or a past deadline is a 422 naming
    the field, with nothing written.
    """
    readable_case(session, actor, framework_id)
    case, warnings = work.run(lambda uow: service.create_task_agreement(uow, framework_id, body, actor))
    response.headers["Location"] = f"/api/v1/agreements/{case.id}"
    framework = framework_of(session, actor, case.id)
    assert framework is not None  # just written in this unit of work
    return TaskAgreementCreated(agreement=read_agreement(session, case.id), framework=framework, warnings=warnings)


@router.get("/agreements/{framework_id}/task-agreements", response_model=list[TaskAgreementSummary])
def list_task_agreements(
    framework_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep
) -> list[TaskAgreementSummary]:
    """List the framework's task-specific agreements that you may open, with their states and deadlines."""
    readable_case(session, actor, framework_id)
    return task_agreements_of(session, ctx.registry, actor, framework_id, ctx.clock.now())


@router.get("/agreements/{agreement_id}/framework", response_model=FrameworkRef)
def framework(agreement_id: int, session: SessionDep, actor: ActorDep) -> FrameworkRef:
    """Name the framework agreement a task-specific agreement implements (404 for one that is not task-specific)."""
    readable_case(session, actor, agreement_id)
    ref = framework_of(session, actor, agreement_id)
    if ref is None:
        raise NotFound(
            f"agreement {agreement_id} is not a task-specific agreement", message_id="task_agreement.error.not_task"
        )
    return ref


@router.post("/agreements/{agreement_id}/continue-alone", response_model=AgreementRead)
def continue_alone(
    agreement_id: int, body: ContinueIn, work: WorkDep, session: SessionDep, actor: ActorDep
) -> AgreementRead:
    """Go on without the terminated framework agreement; the reason is recorded."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.continue_alone(uow, agreement_id, body, actor))
    return read_agreement(session, agreement_id)


@router.post("/agreements/{agreement_id}/confirm-unchanged", response_model=AgreementRead)
def confirm_unchanged(agreement_id: int, work: WorkDep, session: SessionDep, actor: ActorDep) -> AgreementRead:
    """Confirm an agreement under review unchanged (a task-specific one in its framework's review)."""
    readable_case(session, actor, agreement_id)
    work.run(lambda uow: service.confirm_unchanged(uow, agreement_id, actor))
    return read_agreement(session, agreement_id)


@router.get("/reviews/{review_id}/task-agreements", response_model=list[TaskAgreementSummary])
def review_task_agreements(
    review_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep
) -> list[TaskAgreementSummary]:
    """List the task-specific agreements a framework's council-term review covers, with what you may do on each."""
    review = readable_case(session, actor, review_id)
    if review.workflow != "review":
        raise NotFound(
            f"case {review_id} is not a council-term review",
            message_id="error.case_not_found",
            params={"id": review_id},
        )
    framework_id = int(review.data["agreement_id"])
    return task_agreements_of(session, ctx.registry, actor, framework_id, ctx.clock.now())
