"""Read model of a nomination: the request, each proposal, the decision with its shares, appointments."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from engine.actors import Actor
from engine.errors import NotFound
from engine.models import Case, Organisation
from engine.permissions import permitted_for
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


def appointment_read(a: Appointment) -> AppointmentRead:
    """Shape an appointment."""
    return AppointmentRead(id=a.id or 0, seat=a.seat, position=a.position, name=a.name, gender=a.gender,
                           organisation=a.organisation_key, email=a.email, starts_on=a.starts_on, ends_on=a.ends_on,
                           replaces_id=a.replaces_id, reason=a.reason)


def read_nomination(session: Session, registry: Registry, nomination_id: int,
                    actor: Actor | None = None) -> NominationRead:
    """Load one nomination with its proposals, decision and appointments."""
    case = session.get(Case, nomination_id)
    if case is None or case.workflow != NOMINATION:
        raise NotFound(f"no nomination with id {nomination_id}")
    children = list(session.execute(select(Case).where(col(Case.parent_id) == nomination_id)
                                    .order_by(col(Case.id))).scalars())
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
                              version=versions[c.id], candidates=cands[c.id or 0], exceptions=excs[c.id or 0])
                 for c in children]
    decision = None
    if case.data.get("decision_id"):
        d = session.get(NominationDecision, case.data["decision_id"])
        if d is not None:
            decision = NominationDecisionRead(id=d.id or 0, body=d.body, meeting_date=d.meeting_date,
                                              section=d.section, citation=citation(d),
                                              justification=d.justification, shares=shares_read(d))
    appointments = [appointment_read(a) for a in session.execute(
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
