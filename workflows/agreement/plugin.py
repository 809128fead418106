"""The framework-agreement plugin: the agreement and its per-party approval children, wired for the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.actors import Actor
from engine.errors import InvalidInput
from engine.plugin import TriggerHandler, WorkflowPlugin
from engine.service import UnitOfWork
from workflows.agreement import audit, claims, record
from workflows.agreement import service as agreement
from workflows.agreement.cases import AGREEMENT, PARTY
from workflows.agreement.models import Decision, DecisionClaim, DocumentVersion, PartySignatory, Signature
from workflows.agreement.schemas import DecisionIn, DocumentIn, TerminateIn, WithdrawIn
from workflows.agreement.sealed import SealedRecord
from workflows.triggers import child_key, parse

WORKFLOWS_DIR = Path(__file__).resolve().parent.parent


def _decide(outcome: str) -> TriggerHandler:
    def run(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
        parent_id, key = child_key(uow, case_id, "organisation_key")
        return agreement.decide(uow, parent_id, key, parse(DecisionIn, {**payload, "outcome": outcome}), actor)
    return run


def _sign(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
    if payload:
        raise InvalidInput(next(iter(payload)), "sign takes no payload")
    parent_id, key = child_key(uow, case_id, "organisation_key")
    return agreement.sign(uow, parent_id, key, actor)


PLUGIN = WorkflowPlugin(
    name="agreement",
    definitions={WORKFLOWS_DIR / "agreement": {**agreement.AGREEMENT_GUARDS, **claims.AGREEMENT_GUARDS},
                 WORKFLOWS_DIR / "agreement_party": {**agreement.PARTY_GUARDS, **claims.PARTY_GUARDS}},
    child_listeners={AGREEMENT: agreement.react_to_party},
    listeners={AGREEMENT: (claims.on_agreement, record.queue_on_entry),  # the sealed record's pending row
               PARTY: (claims.on_party,)},  # finality: claims, publication dates, the wait
    recipients={AGREEMENT: agreement.recipients, PARTY: agreement.recipients},
    triggers={
        ("agreement", "circulate"): lambda uow, cid, actor, p, v: agreement.circulate(uow, cid, actor, v),
        ("agreement", "revise"): lambda uow, cid, actor, p, v: agreement.revise(uow, cid, parse(DocumentIn, p),
                                                                                actor, v),
        ("agreement", "withdraw"): lambda uow, cid, actor, p, v: agreement.withdraw(uow, cid, parse(WithdrawIn, p),
                                                                                    actor),
        ("agreement", "terminate"): lambda uow, cid, actor, p, v: agreement.terminate(uow, cid,
                                                                                      parse(TerminateIn, p), actor),
        ("agreement_party", "approve"): _decide("approved"),
        ("agreement_party", "decline"): _decide("declined"),
        ("agreement_party", "sign"): _sign,
        **claims.TRIGGERS,  # publication dates and claims go through their operations, never a bare fire
    },
    tables=(DocumentVersion, PartySignatory, Decision, Signature, DecisionClaim, SealedRecord),
    audit_checks=audit.CHECKS,
)
