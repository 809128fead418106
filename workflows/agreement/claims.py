"""Decision finality in the agreement workflow: publication dates, claims for rectification and appeals.

A party's decision carries the minutes' publication date (and an electronic notice to a party); finality is
counted from them by `workflows.agreement.finality`. The coordinator records a claim for rectification
(*oikaisuvaatimus*) or an appeal against a party's decision (who, when, reference): the party case goes to a state
tagged `contested` (the definition's `record_claim`), whose escalation timer reminds the coordinator weekly while the
claim awaits its outcome. Upheld, the decision and its signatures are void and the party is asked again
(`uphold_claim`; an agreement already waiting for finality or in force is reopened). Rejected or withdrawn, the
party returns to where its decision and signatures put it (`settle_claim`).

With the definition setting `enter_into_force_when_final`, an agreement whose parties have all signed waits in a
state tagged `awaiting_finality` until every decision is final: its timer is on the latest final date
(`final_at`, 00:00 Helsinki of that day), re-planned whenever a publication date or a claim changes it.

The party case's data keeps a copy of its current decision's claims and dates (`claims`, `claim_deadline`,
`final_on`), which the read model and the annual clock show without another query; `decision_claim` is the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from engine.actors import SYSTEM, Actor
from engine.calendar import HELSINKI
from engine.errors import Conflict, InvalidInput, NotFound, NotPermitted
from engine.plugin import TriggerHandler
from engine.records import CaseRow, TransitionRecord
from engine.service import FireContext, UnitOfWork, actor_roles
from engine.timers import rearm
from workflows.agreement.cases import (
    PARTY,
    agreement_case,
    count_signatures,
    current_decision,
    has_tag,
    party_case,
)
from workflows.agreement.finality import Finality, SimpleDecision, finality_of
from workflows.agreement.models import Decision, DecisionClaim, Signature
from workflows.agreement.schemas import ClaimIn, ClaimOutcomeIn, PublicationIn
from workflows.common.dates import today
from workflows.triggers import child_key, parse

SETTING = "enter_into_force_when_final"
PARTY_EVENTS = frozenset({"DecisionPublished", "ClaimRecorded", "ClaimUpheld", "ClaimSettled", "PartyApproved",
                          "PartyDeclined", "PartyReinvited"})


def claims_of(session: Any, decision_ids: Iterable[int]) -> dict[int, list[DecisionClaim]]:
    """Return the claims recorded against each decision, oldest first."""
    ids = list(decision_ids)
    out: dict[int, list[DecisionClaim]] = {i: [] for i in ids}
    if ids:
        for claim in session.execute(select(DecisionClaim).where(col(DecisionClaim.decision_id).in_(ids))
                                     .order_by(col(DecisionClaim.id))).scalars():
            out[claim.decision_id].append(claim)
    return out


def decision_finality(session: Any, decision: Decision, today: date) -> Finality:
    """Return a recorded decision's finality on a day (its claims read from the database)."""
    return finality_of(decision, claims_of(session, [decision.id or 0])[decision.id or 0], today)


def _current_decisions(uow: UnitOfWork, parties: list[CaseRow]) -> dict[int, Decision | None]:
    return {p.id: current_decision(uow, p) for p in parties}


def parties_finality(uow: UnitOfWork, parent: CaseRow) -> list[Finality | None]:
    """Return the finality of each party's current decision today (None: the party has no decision)."""
    decisions = _current_decisions(uow, uow.children(parent.id))
    claims = claims_of(uow.session, [d.id or 0 for d in decisions.values() if d is not None])
    on = today(uow)
    return [finality_of(d, claims[d.id or 0], on) if d is not None else None for d in decisions.values()]


def all_final(uow: UnitOfWork, parent: CaseRow) -> bool:
    """Tell whether every party's current decision is final today."""
    found = parties_finality(uow, parent)
    return bool(found) and all(f is not None and f.is_final for f in found)


def final_at(uow: UnitOfWork, parent: CaseRow) -> str | None:
    """Return the instant (ISO, UTC) the last party's decision becomes final, or None while that is unknown."""
    found = parties_finality(uow, parent)
    if not found or any(f is None or f.expected_final_on is None for f in found):
        return None
    last = max(f.expected_final_on for f in found if f is not None and f.expected_final_on is not None)
    return datetime.combine(last, time(0), tzinfo=HELSINKI).astimezone(UTC).isoformat()


def finality_awaited(uow: UnitOfWork, parent: CaseRow) -> bool:
    """Tell whether the definition makes this agreement wait for final decisions, and some is not final yet."""
    definition = uow.machine_of(parent).definition
    return bool(definition.setting(SETTING)) and not all_final(uow, parent)


# -- guards --------------------------------------------------------------------------------------------


def _finality_awaited(ctx: FireContext) -> bool:
    if not finality_awaited(ctx.uow, ctx.case):
        return ctx.refuse("the agreement does not wait for final decisions", "agreement.error.finality_not_awaited")
    return True


def _finality_not_awaited(ctx: FireContext) -> bool:
    if finality_awaited(ctx.uow, ctx.case):
        return ctx.refuse("the agreement enters into force only when every party's decision is final",
                          "agreement.error.not_all_final")
    return True


def _all_decisions_final(ctx: FireContext) -> bool:
    if not all_final(ctx.uow, ctx.case):
        return ctx.refuse("not every party's decision is final yet", "agreement.error.not_all_final")
    return True


def _claim_pending(ctx: FireContext) -> bool:
    decision = current_decision(ctx.uow, ctx.case)
    pending = decision is not None and any(c.outcome == "pending"
                                           for c in claims_of(ctx.uow.session, [decision.id or 0])[decision.id or 0])
    if not pending:
        return ctx.refuse("no other claim awaits its outcome", "agreement.error.no_claim_pending")
    return True


def _decision_approved(ctx: FireContext) -> bool:
    decision = current_decision(ctx.uow, ctx.case)
    if decision is None or decision.outcome != "approved":
        return ctx.refuse("the party's body did not approve the current text", "agreement.error.not_approved")
    return True


def _signatures_complete(ctx: FireContext) -> bool:
    return count_signatures(ctx.uow, ctx.case) >= int(ctx.case.data.get("required_signatures", 1))


AGREEMENT_GUARDS = {"finality_awaited": _finality_awaited, "finality_not_awaited": _finality_not_awaited,
                    "all_decisions_final": _all_decisions_final}
PARTY_GUARDS = {"claim_pending": _claim_pending, "decision_approved": _decision_approved}


# -- keeping the copies and the timer up to date -------------------------------------------------------------


def _claim_copy(c: DecisionClaim) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind, "claimant": c.claimant, "filed_on": c.filed_on.isoformat(),
            "reference": c.reference, "outcome": c.outcome,
            "outcome_on": c.outcome_on.isoformat() if c.outcome_on else None, "outcome_note": c.outcome_note}


def refresh_party(uow: UnitOfWork, party: CaseRow, record: TransitionRecord | None = None) -> None:
    """Copy the current decision's claims and finality dates into the party case's data.

    A new decision (approve, decline) has no claims yet and its dates are in the event's payload: no query, and
    no write when it has no publication date and the copy is empty already (the approval hot path).
    """
    if record is not None and record.event_name in ("PartyApproved", "PartyDeclined"):
        p = record.payload
        dates = SimpleDecision(date.fromisoformat(p["published_on"]) if p.get("published_on") else None,
                               date.fromisoformat(p["notice_sent_on"]) if p.get("notice_sent_on") else None)
        f = finality_of(dates, [], today(uow))
        changes: dict[str, Any] = {
            "claims": [], "claim_deadline": f.claim_deadline.isoformat() if f.claim_deadline else None,
            "final_on": f.expected_final_on.isoformat() if f.expected_final_on else None}
    elif (found := current_decision(uow, party)) is None:
        changes = {"claims": [], "claim_deadline": None, "final_on": None}
    else:
        claims = claims_of(uow.session, [found.id or 0])[found.id or 0]
        f = finality_of(found, claims, today(uow))
        changes = {"claims": [_claim_copy(c) for c in claims],
                   "claim_deadline": f.claim_deadline.isoformat() if f.claim_deadline else None,
                   "final_on": f.expected_final_on.isoformat() if f.expected_final_on else None}
    if any((party.data.get(k) or None) != (v or None) for k, v in changes.items()):  # missing == empty
        uow.set_data(party, **changes)


def refresh_parent(uow: UnitOfWork, parent: CaseRow) -> None:
    """Re-plan the wait for finality: the instant the last decision becomes final, and enter into force when due."""
    if not uow.machine_of(parent).definition.setting(SETTING):
        return
    when = final_at(uow, parent)
    if parent.data.get("final_at") != when:
        uow.set_data(parent, final_at=when)
        if uow.may(parent, "reschedule_finality"):  # recorded in the chain, and the timer planned anew after it
            uow.fire(parent.id, "reschedule_finality", actor=SYSTEM, payload={"final_at": when} if when else {},
                     document_hash=parent.data["sha256"])
            rearm(uow, parent, "the decisions' final date changed")
    if uow.may(parent, "decisions_final") and "decisions_final" in uow.permitted_triggers(parent.id, SYSTEM):
        uow.fire(parent.id, "decisions_final", actor=SYSTEM, document_hash=parent.data["sha256"])


def enter_when_all_signed(uow: UnitOfWork, parent: CaseRow) -> None:
    """After a party returned to signed: enter into force (or wait for finality) when every party has signed."""
    if not (has_tag(uow, parent, "open_for_parties")
            and all(has_tag(uow, c, "signed") for c in uow.children(parent.id))):
        return
    if finality_awaited(uow, parent):
        uow.fire(parent.id, "await_finality", actor=SYSTEM, document_hash=parent.data["sha256"])
        return
    uow.fire(parent.id, "enter_into_force", actor=SYSTEM, payload={"sha256": parent.data["sha256"]},
             document_hash=parent.data["sha256"])
    uow.set_data(parent, in_force_sha256=parent.data["sha256"], in_force_at=uow.now.isoformat())


def on_party(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Listener on party cases: keep the finality copies, reopen on an upheld claim, re-plan the wait."""
    if record.event_name not in PARTY_EVENTS:
        return
    party = record.case
    parent = uow.case(party.parent_id or 0)
    refresh_party(uow, party, record)
    if record.event_name == "ClaimUpheld" and uow.may(parent, "reopen"):
        uow.fire(parent.id, "reopen", actor=SYSTEM, document_hash=parent.data["sha256"],
                 payload={"party": party.data.get("organisation_key", ""), "claim_id": record.payload["claim_id"]})
        uow.set_data(parent, in_force_sha256=None, in_force_at=None, final_at=None)
        return
    if record.event_name == "ClaimSettled" and has_tag(uow, party, "signed"):
        enter_when_all_signed(uow, parent)
    refresh_parent(uow, parent)


def on_agreement(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Listener on agreements: entering into force from the wait for finality records when and which text."""
    if record.trigger == "decisions_final":
        case = record.case
        uow.set_data(case, in_force_sha256=case.data["sha256"], in_force_at=uow.now.isoformat())
    elif record.event_name == "FinalityAwaited":  # before its state's timer is armed (the engine's listener)
        uow.set_data(record.case, final_at=final_at(uow, record.case))


# -- operations -------------------------------------------------------------------------------------------------


def _may(uow: UnitOfWork, party: CaseRow, actor: Actor, trigger: str, organisation_key: str) -> None:
    needed = {r for t in uow.machine_of(party).definition.transitions_for(trigger) for r in t.roles}
    if not actor_roles(uow, party, actor) & needed:
        raise NotPermitted(f"you may not {trigger.replace('_', ' ')} for {organisation_key}", case_id=party.id,
                           action=trigger, message_id="error.not_permitted",
                           params={"workflow": party.workflow, "trigger": trigger})


def _decision_of(uow: UnitOfWork, party: CaseRow, organisation_key: str) -> Decision:
    decision = current_decision(uow, party)
    if decision is None:
        raise Conflict(f"{organisation_key} has no recorded decision on the current text",
                       message_id="agreement.error.no_decision")
    return decision


def check_publication(decided_on: date, published_on: date | None, notice_sent_on: date | None) -> None:
    """Refuse a publication or notice date before the decision (the field named)."""
    for name, value in (("published_on", published_on), ("notice_sent_on", notice_sent_on)):
        if value is not None and value < decided_on:
            raise InvalidInput(name, f"{value.isoformat()} is before the decision ({decided_on.isoformat()})",
                               message_id="decision.error.before_decision")


def record_publication(uow: UnitOfWork, agreement_id: int, organisation_key: str, data: PublicationIn,
                       actor: Actor) -> Decision:
    """Record when the minutes of a party's current decision were published (and a notice sent to a party)."""
    party = party_case(uow, agreement_id, organisation_key)
    _may(uow, party, actor, "record_publication", organisation_key)
    decision = _decision_of(uow, party, organisation_key)
    check_publication(decision.decided_on, data.published_on, data.notice_sent_on)
    if (decision.published_on, decision.notice_sent_on) == (data.published_on, data.notice_sent_on):
        return decision
    decision.published_on, decision.notice_sent_on = data.published_on, data.notice_sent_on
    uow.session.add(decision)
    uow.session.flush()
    payload: dict[str, Any] = {"decision_id": decision.id}
    if data.published_on:
        payload["published_on"] = data.published_on.isoformat()
    if data.notice_sent_on:
        payload["notice_sent_on"] = data.notice_sent_on.isoformat()
    uow.fire(party.id, "record_publication", actor=actor, payload=payload,
             document_hash=uow.case(agreement_id).data["sha256"])
    return decision


def record_claim(uow: UnitOfWork, agreement_id: int, organisation_key: str, data: ClaimIn,
                 actor: Actor) -> DecisionClaim:
    """Record a claim for rectification or an appeal against a party's current decision."""
    party = party_case(uow, agreement_id, organisation_key)
    _may(uow, party, actor, "record_claim", organisation_key)
    decision = _decision_of(uow, party, organisation_key)
    if data.filed_on < decision.decided_on:
        raise InvalidInput("filed_on", f"{data.filed_on.isoformat()} is before the decision "
                           f"({decision.decided_on.isoformat()})", message_id="claim.error.before_decision")
    if data.filed_on > today(uow):
        raise InvalidInput("filed_on", f"{data.filed_on.isoformat()} is in the future",
                           message_id="claim.error.future")
    claim = DecisionClaim(decision_id=decision.id or 0, party_case_id=party.id, kind=data.kind,
                          claimant=data.claimant, filed_on=data.filed_on, reference=data.reference,
                          recorded_by=actor.person_id, recorded_at=uow.now)
    uow.session.add(claim)
    uow.session.flush()
    uow.set_data(party, claim_filed_on=data.filed_on.isoformat())  # the reminders count from it
    payload: dict[str, Any] = {"claim_id": claim.id, "decision_id": decision.id, "kind": data.kind,
                               "claimant": data.claimant, "filed_on": data.filed_on.isoformat()}
    if data.reference:
        payload["reference"] = data.reference
    uow.fire(party.id, "record_claim", actor=actor, payload=payload,
             document_hash=uow.case(agreement_id).data["sha256"])
    return claim


def decide_claim(uow: UnitOfWork, agreement_id: int, organisation_key: str, claim_id: int, data: ClaimOutcomeIn,
                 actor: Actor) -> DecisionClaim:
    """Record a claim's outcome; upheld voids the decision and its signatures and asks the party again."""
    party = party_case(uow, agreement_id, organisation_key)
    trigger = "uphold_claim" if data.outcome == "upheld" else "settle_claim"
    _may(uow, party, actor, trigger, organisation_key)
    claim = uow.session.get(DecisionClaim, claim_id)
    if claim is None or claim.party_case_id != party.id:
        raise NotFound(f"{organisation_key} has no claim {claim_id}", message_id="claim.error.not_found",
                       params={"id": claim_id})
    if claim.outcome != "pending":
        raise Conflict(f"claim {claim_id} was already decided ({claim.outcome})",
                       message_id="claim.error.decided", params={"outcome": claim.outcome})
    if data.outcome_on < claim.filed_on:
        raise InvalidInput("outcome_on", f"{data.outcome_on.isoformat()} is before the claim was filed "
                           f"({claim.filed_on.isoformat()})", message_id="claim.error.outcome_before_filed")
    if data.outcome_on > today(uow):
        raise InvalidInput("outcome_on", f"{data.outcome_on.isoformat()} is in the future",
                           message_id="claim.error.future")
    parent = agreement_case(uow, agreement_id)
    claim.outcome, claim.outcome_on, claim.outcome_note = data.outcome, data.outcome_on, data.note
    claim.decided_by, claim.decided_at = actor.person_id, uow.now
    uow.session.add(claim)
    uow.session.flush()
    if data.outcome == "upheld":  # the decision is void: as a revision does, void it and its signatures
        for table in (Decision, Signature):
            uow.session.execute(update(table).where(col(table.party_case_id) == party.id,
                                                    col(table.voided_at).is_(None)).values(voided_at=uow.now))
    payload: dict[str, Any] = {"claim_id": claim.id, "outcome": data.outcome,
                               "outcome_on": data.outcome_on.isoformat()}
    if data.note:
        payload["note"] = data.note
    uow.fire(party.id, trigger, actor=actor, payload=payload, document_hash=parent.data["sha256"])
    return claim


# -- the generic trigger route (POST /cases/{id}/triggers/{trigger}) goes through the same operations --------


def _publication(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
    parent_id, key = child_key(uow, case_id, "organisation_key")
    return record_publication(uow, parent_id, key, parse(PublicationIn, payload), actor)


def _claim(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
    parent_id, key = child_key(uow, case_id, "organisation_key")
    return record_claim(uow, parent_id, key, parse(ClaimIn, payload), actor)


def _outcome(uow: UnitOfWork, case_id: int, actor: Actor, payload: dict[str, Any], _v: int | None) -> Any:
    parent_id, key = child_key(uow, case_id, "organisation_key")
    body = dict(payload)
    claim_id = body.pop("claim_id", None)
    if not isinstance(claim_id, int) or isinstance(claim_id, bool):
        raise InvalidInput("claim_id", "is required: the id of the claim whose outcome this is")
    return decide_claim(uow, parent_id, key, claim_id, parse(ClaimOutcomeIn, body), actor)


TRIGGERS: dict[tuple[str, str], TriggerHandler] = {
    (PARTY, "record_publication"): _publication, (PARTY, "record_claim"): _claim,
    (PARTY, "uphold_claim"): _outcome, (PARTY, "settle_claim"): _outcome}
