"""Read model of a nomination: the request, each proposal, the decision with its shares, appointments.

What a reader sees follows the engine's read rule (`engine.permissions.ReadAccess`), widened here by one fact the
engine cannot know: the requester (its address or organisation) reads the request and its decision. The coordinator and
administrators see everything; an asked organisation its own proposal and the request's shared facts, other
organisations' proposals only after the decision and then without candidates; addresses only its own.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import CaseNotFound, NotFound
from engine.models import Case, Organisation, Person
from engine.permissions import ReadAccess, case_access, permitted_for
from engine.registry import Registry
from workflows.nomination.appointments import citation
from workflows.nomination.equality import Shares as ShareCount
from workflows.nomination.models import Appointment, Candidate, NominationDecision, ProposalException
from workflows.nomination.schemas import (
    AppointmentRead,
    CandidateRead,
    NominationDecisionRead,
    NominationRead,
    ProposalRead,
    Shares,
)
from workflows.nomination.service import NOMINATION


def shares_read(d: NominationDecision) -> Shares:
    """Shape the decision's counts as shares."""
    pct = ShareCount.pct
    return Shares(members=d.members, women_members=d.women_members, men_members=d.men_members,
                  women_members_pct=pct(d.women_members, d.members), men_members_pct=pct(d.men_members, d.members),
                  deputies=d.deputies, women_deputies=d.women_deputies, men_deputies=d.men_deputies,
                  women_deputies_pct=pct(d.women_deputies, d.deputies),
                  men_deputies_pct=pct(d.men_deputies, d.deputies))


def appointment_read(a: Appointment, shown: bool = True) -> AppointmentRead:
    """Shape an appointment (`shown=False`: without the appointee's address, for another organisation's reader)."""
    return AppointmentRead(id=a.id or 0, seat=a.seat, position=a.position, name=a.name, gender=a.gender,
                           organisation=a.organisation_key, email=a.email if shown else None, starts_on=a.starts_on,
                           ends_on=a.ends_on,
                           replaces_id=a.replaces_id, reason=a.reason)


def _org_key(session: Session, organisation_id: int | None) -> str | None:
    if organisation_id is None:
        return None
    key: str | None = session.execute(select(col(Organisation.key))
                                      .where(col(Organisation.id) == organisation_id)).scalar()
    return key


def is_requester(session: Session, actor: Actor | None, case: Case) -> bool:
    """Tell whether the actor is the request's requester: its email address, or a person of its organisation."""
    if actor is None or actor.person_id is None:
        return False
    requester = (case.data or {}).get("requester") or {}
    email = str(requester.get("email") or "").lower()
    mine = session.execute(select(col(Person.email)).where(col(Person.id) == actor.person_id)).scalar()
    if email and mine and mine.lower() == email:
        return True
    key = requester.get("organisation")
    return bool(key) and key == _org_key(session, actor.organisation_id)


def nomination_access(session: Session, actor: Actor | None, case: Case) -> ReadAccess:
    """Return how much of a nomination request the actor reads: the engine's rule, and the requester (by address
    or organisation) reads the request's shared facts and, once made, the decision."""
    access = case_access(session, actor, case)
    if access == ReadAccess.NONE and is_requester(session, actor, case):
        return ReadAccess.SHARED
    return access


def readable_nomination(session: Session, actor: Actor | None, nomination_id: int) -> tuple[Case, ReadAccess]:
    """Return a nomination request and the actor's access; unknown and hidden are both 404."""
    case = session.get(Case, nomination_id)
    access = nomination_access(session, actor, case) if case is not None else ReadAccess.NONE
    if case is None or case.workflow != NOMINATION or access == ReadAccess.NONE:
        raise CaseNotFound(f"no nomination with id {nomination_id}", message_id="error.case_not_found",
                       params={"id": nomination_id})
    return case, access


def read_nomination(session: Session, registry: Registry, nomination_id: int,
                    actor: Actor | None = None) -> NominationRead:
    """Load one nomination with its proposals, decision and appointments, as much as the actor may read.

    No actor reads as an outsider who may open the request: its shared facts only (pass `engine.actors.SYSTEM`
    for everything).
    """
    case = session.get(Case, nomination_id)
    if case is None or case.workflow != NOMINATION:
        raise NotFound(f"no nomination with id {nomination_id}")
    access = nomination_access(session, actor, case)
    full = access == ReadAccess.FULL
    own_org = actor.organisation_id if actor is not None and not full else None
    own_key = _org_key(session, own_org)
    decided = bool(case.data.get("decision_id"))
    children = [c for c in session.execute(select(Case).where(col(Case.parent_id) == nomination_id)
                                           .order_by(col(Case.id))).scalars()
                if full or decided or (own_org is not None and c.organisation_id == own_org)]

    def own(c: Case) -> bool:
        return full or (own_org is not None and c.organisation_id == own_org)
    ids = [c.id for c in children]
    names = dict(session.execute(select(col(Organisation.key), col(Organisation.name_fi)).where(
        col(Organisation.id).in_([c.organisation_id for c in children]))).all())
    cands: dict[int, list[CandidateRead]] = {i: [] for i in ids if i is not None}
    for c in session.execute(select(Candidate).where(col(Candidate.proposal_case_id).in_(ids),
                                                     col(Candidate.superseded_at).is_(None))
                             .order_by(col(Candidate.id))).scalars():
        cands[c.proposal_case_id].append(CandidateRead(
            id=c.id or 0, seat=c.seat, position=c.position, name=c.name, gender=c.gender,
            organisation=c.organisation_key, email=c.email, person_id=c.person_id))
    excs: dict[int, list[dict[str, object]]] = {i: [] for i in ids if i is not None}
    versions = {c.id: int(c.data.get("proposal_version", 0)) for c in children}
    for e in session.execute(select(ProposalException).where(col(ProposalException.proposal_case_id).in_(ids))
                             .order_by(col(ProposalException.id))).scalars():
        if e.proposal_version == versions.get(e.proposal_case_id):
            excs[e.proposal_case_id].append({"seat": e.seat, "position": e.position, "reason": e.reason})
    proposals = [ProposalRead(case_id=c.id or 0, organisation=c.data["organisation_key"],
                              organisation_name=names.get(c.data["organisation_key"], ""), state=c.state,
                              version=versions[c.id], candidates=cands[c.id or 0] if own(c) else [],
                              exceptions=excs[c.id or 0] if own(c) else [])
                 for c in children]
    decision = None
    if case.data.get("decision_id"):
        d = session.get(NominationDecision, case.data["decision_id"])
        if d is not None:
            decision = NominationDecisionRead(id=d.id or 0, body=d.body, meeting_date=d.meeting_date,
                                              section=d.section, citation=citation(d),
                                              justification=d.justification, shares=shares_read(d))
    appointments = [appointment_read(a, shown=full or a.organisation_key == own_key) for a in session.execute(
        select(Appointment).where(col(Appointment.case_id) == nomination_id)
        .order_by(col(Appointment.seat), col(Appointment.position).desc(), col(Appointment.id))).scalars()]
    return NominationRead(
        id=case.id or 0, state=case.state, version=case.version, group=case.data["group"],
        requester=case.data["requester"], term_start=date.fromisoformat(case.data["term_start"]),
        term_end=date.fromisoformat(case.data["term_end"]),
        deadline=date.fromisoformat(case.data["proposal_deadline"]), seats=case.data["seats"],
        proposals=proposals, decision=decision, appointments=appointments,
        current=[a for a in appointments if a.ends_on is None], letter_id=case.data.get("letter_id"),
        allowed_triggers=permitted_for(registry, session, case, actor), created_at=case.created_at)
