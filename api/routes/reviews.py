"""Council-term reviews of agreements in force: list, open by hand, confirm unchanged or revise."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.access import readable_case
from api.deps import ActorDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from workflows.review import service
from workflows.review.schemas import ConfirmIn, ReviewRead, ReviewStart, ReviseIn

router = APIRouter(tags=["reviews"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


@router.get("/agreements/{agreement_id}/reviews", response_model=list[ReviewRead])
def list_reviews(agreement_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> list[ReviewRead]:
    """List an agreement's council-term reviews."""
    readable_case(session, actor, agreement_id)
    return service.list_reviews(session, ctx.registry, agreement_id, actor)


@router.post("/agreements/{agreement_id}/reviews", response_model=ReviewRead, status_code=status.HTTP_201_CREATED)
def start(work: WorkDep, agreement_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep,
          body: ReviewStart | None = None) -> ReviewRead:
    """Open this council term's review of an agreement in force."""
    readable_case(session, actor, agreement_id)
    case = work.run(lambda uow: service.start_now(uow, agreement_id, body or ReviewStart(), actor))
    return service.review_read(session, ctx.registry, readable_case(session, actor, case.id), actor)


@router.post("/reviews/{review_id}/confirm", response_model=ReviewRead)
def confirm(work: WorkDep, review_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep,
            body: ConfirmIn | None = None) -> ReviewRead:
    """End the review: the agreement stays in force unchanged."""
    readable_case(session, actor, review_id)
    work.run(lambda uow: service.confirm_unchanged(uow, review_id, body or ConfirmIn(), actor))
    return service.review_read(session, ctx.registry, readable_case(session, actor, review_id), actor)


@router.post("/reviews/{review_id}/revision", response_model=ReviewRead)
def revise(work: WorkDep, review_id: int, body: ReviseIn, ctx: CtxDep, session: SessionDep,
           actor: ActorDep) -> ReviewRead:
    """End the review with a revised text that goes to every party for approval again."""
    readable_case(session, actor, review_id)
    work.run(lambda uow: service.revise(uow, review_id, body, actor))
    return service.review_read(session, ctx.registry, readable_case(session, actor, review_id), actor)
