"""Decision finality in the agreement API: a decision's publication date, claims for rectification and appeals.

What a decision's finality is (notified on, last day for a claim, final on) is part of the agreement's read
(`GET /agreements/{id}`, each party's `decision`); these routes record what it is counted from.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.access import readable_case
from api.deps import ActorDep, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from workflows.agreement import claims
from workflows.agreement.models import DecisionClaim
from workflows.agreement.read import decision_read
from workflows.agreement.schemas import ClaimIn, ClaimOutcomeIn, ClaimRead, DecisionRead, PublicationIn

router = APIRouter(prefix="/agreements", tags=["agreements"], responses=ERROR_RESPONSES,
                   route_class=UnitOfWorkRoute)


def claim_read(c: DecisionClaim) -> ClaimRead:
    """Shape a claim for the API."""
    return ClaimRead(id=c.id or 0, kind=c.kind, claimant=c.claimant, filed_on=c.filed_on, reference=c.reference,
                     outcome=c.outcome, outcome_on=c.outcome_on, outcome_note=c.outcome_note)


@router.put("/{agreement_id}/parties/{organisation_key}/decision/publication", response_model=DecisionRead)
def record_publication(agreement_id: int, organisation_key: str, body: PublicationIn, work: WorkDep,
                       session: SessionDep, actor: ActorDep) -> DecisionRead:
    """Record when the minutes of the party's current decision were published online (and a notice sent)."""
    readable_case(session, actor, agreement_id)
    decision = work.run(lambda uow: claims.record_publication(uow, agreement_id, organisation_key, body, actor))
    return decision_read(decision)


@router.post("/{agreement_id}/parties/{organisation_key}/claims", response_model=ClaimRead,
             status_code=status.HTTP_201_CREATED)
def record_claim(agreement_id: int, organisation_key: str, body: ClaimIn, work: WorkDep, session: SessionDep,
                 actor: ActorDep, response: Response) -> ClaimRead:
    """Record a claim for rectification or an appeal against the party's decision (coordinator): who, when,
    reference. The party is flagged and its decision is not final until the claim is decided."""
    readable_case(session, actor, agreement_id)
    claim = work.run(lambda uow: claims.record_claim(uow, agreement_id, organisation_key, body, actor))
    response.headers["Location"] = f"/api/v1/agreements/{agreement_id}"
    return claim_read(claim)


@router.post("/{agreement_id}/parties/{organisation_key}/claims/{claim_id}/outcome", response_model=ClaimRead)
def decide_claim(agreement_id: int, organisation_key: str, claim_id: int, body: ClaimOutcomeIn, work: WorkDep,
                 session: SessionDep, actor: ActorDep) -> ClaimRead:
    """Record how a claim was decided: upheld voids the decision and its signatures and asks the party again;
    rejected or withdrawn lets the decision become final."""
    readable_case(session, actor, agreement_id)
    claim = work.run(lambda uow: claims.decide_claim(uow, agreement_id, organisation_key, claim_id, body, actor))
    return claim_read(claim)
