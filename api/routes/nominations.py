"""The nomination API: requests, proposals per asked organisation, decision, letter, replacements, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from api.access import ReadAccess, readable_case
from api.deps import ActorDep, CtxDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.actors import Actor
from engine.errors import NotFound, NotPermitted
from engine.registry import Registry
from workflows.nomination import appointments, service
from workflows.nomination.models import NominationLetter
from workflows.nomination.read import is_requester, read_nomination, readable_nomination
from workflows.nomination.schemas import (
    CancelIn,
    DecisionIn,
    NominationCreate,
    NominationRead,
    ProposalIn,
    ReplacementIn,
    WaiveIn,
)

router = APIRouter(prefix="/nominations", tags=["nominations"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


def _read(session: Session, registry: Registry, actor: Actor, nomination_id: int) -> NominationRead:
    readable_nomination(session, actor, nomination_id)
    return read_nomination(session, registry, nomination_id, actor)


@router.post("", response_model=NominationRead, status_code=status.HTTP_201_CREATED)
def create(work: WorkDep, body: NominationCreate, ctx: CtxDep, session: SessionDep, actor: ActorDep,
           response: Response) -> NominationRead:
    """Create a request; every asked organisation gets a proposal case and its contacts an email."""
    case = work.run(lambda uow: service.create_nomination(uow, body, actor))
    response.headers["Location"] = f"/api/v1/nominations/{case.id}"
    return _read(session, ctx.registry, actor, case.id)


@router.get("/{nomination_id}", response_model=NominationRead)
def get(nomination_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> NominationRead:
    """Return the request, each proposal, the decision with its shares and the appointments with history."""
    return _read(session, ctx.registry, actor, nomination_id)


@router.put("/{nomination_id}/proposals/{organisation_key}", response_model=NominationRead)
def propose(work: WorkDep, nomination_id: int, organisation_key: str, body: ProposalIn, ctx: CtxDep,
            session: SessionDep,
            actor: ActorDep) -> NominationRead:
    """Propose candidates for every seat (a woman and a man each, or an exception); replaces an earlier proposal."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: service.propose(uow, nomination_id, organisation_key, body, actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.post("/{nomination_id}/proposals/{organisation_key}/waive", response_model=NominationRead)
def waive(work: WorkDep, nomination_id: int, organisation_key: str, ctx: CtxDep, session: SessionDep, actor: ActorDep,
          body: WaiveIn | None = None) -> NominationRead:
    """Say the organisation proposes nobody."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: service.waive(uow, nomination_id, organisation_key, body or WaiveIn(), actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.post("/{nomination_id}/close", response_model=NominationRead)
def close(work: WorkDep, nomination_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> NominationRead:
    """Close proposals before the deadline."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: service.close_proposals(uow, nomination_id, actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.post("/{nomination_id}/decision", response_model=NominationRead, status_code=status.HTTP_201_CREATED)
def decide(work: WorkDep, nomination_id: int, body: DecisionIn, ctx: CtxDep, session: SessionDep,
           actor: ActorDep) -> NominationRead:
    """Record the regional directors' meeting's decision: a member and a deputy per seat."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: appointments.decide(uow, nomination_id, body, actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.post("/{nomination_id}/communicate", response_model=NominationRead)
def communicate(work: WorkDep, nomination_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> NominationRead:
    """Send the nomination letter to the requester (in its language) with copies to the nominees."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: appointments.communicate(uow, nomination_id, actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.get("/{nomination_id}/letter", response_class=HTMLResponse)
def letter(nomination_id: int, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    """Return the nomination letter as sent, to the request's coordinator, administrators and the requester.

    It names the nominees and is copied to their addresses: an asked organisation reads the decision on the
    request, not the letter (the same rule as the letter page).
    """
    case, access = readable_nomination(session, actor, nomination_id)
    if access < ReadAccess.FULL and not is_requester(session, actor, case):
        raise NotPermitted(f"person {actor.person_id} may not read the letter of nomination {nomination_id}",
                           message_id="nomination.error.letter_for_requester", params={"group": case.title})
    row = session.get(NominationLetter, case.data.get("letter_id") or 0)
    if row is None:
        raise NotFound("this nomination has no letter yet")
    return HTMLResponse(row.html, headers={"Content-Language": row.language})


@router.post("/{nomination_id}/replacements", response_model=NominationRead, status_code=status.HTTP_201_CREATED)
def replace(work: WorkDep, nomination_id: int, body: ReplacementIn, ctx: CtxDep, session: SessionDep,
            actor: ActorDep) -> NominationRead:
    """Replace a member or deputy mid-term (jäsenmuutos); the earlier appointment stays in the history."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: appointments.replace(uow, nomination_id, body, actor))
    return _read(session, ctx.registry, actor, nomination_id)


@router.post("/{nomination_id}/cancel", response_model=NominationRead)
def cancel(work: WorkDep, nomination_id: int, body: CancelIn, ctx: CtxDep, session: SessionDep,
           actor: ActorDep) -> NominationRead:
    """Cancel the request."""
    readable_case(session, actor, nomination_id)
    work.run(lambda uow: service.cancel(uow, nomination_id, body, actor))
    return _read(session, ctx.registry, actor, nomination_id)
