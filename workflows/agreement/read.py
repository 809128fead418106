"""Read model of an agreement: state, current text and hash, each party with decision and signatures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from engine.errors import NotFound
from engine.models import Case, Organisation, Person
from workflows.agreement.models import Decision, DocumentVersion, PartySignatory, Signature
from workflows.agreement.schemas import (
    AgreementRead,
    DecisionRead,
    PartyRead,
    SignatoryRead,
    SignatureRead,
)
from workflows.agreement.service import AGREEMENT, decision_citation


def decision_read(d: Decision) -> DecisionRead:
    """Shape a decision for the API."""
    return DecisionRead(id=d.id or 0, outcome=d.outcome, body=d.body, decided_on=d.decided_on, section=d.section,
                        minutes_url=d.minutes_url, note=d.note, document_sha256=d.document_sha256,
                        citation=decision_citation(d), recorded_at=d.recorded_at)


def read_agreement(session: Session, agreement_id: int) -> AgreementRead:
    """Load one agreement with all its parties in a fixed, small number of queries."""
    case = session.get(Case, agreement_id)
    if case is None or case.workflow != AGREEMENT:
        raise NotFound(f"no agreement with id {agreement_id}")
    doc = session.get(DocumentVersion, case.data["document_version_id"])
    children = list(session.execute(
        select(Case).where(Case.parent_id == agreement_id).order_by(col(Case.id))).scalars())
    ids = [c.id for c in children]
    orgs = {o.id: o for o in session.execute(select(Organisation).where(
        col(Organisation.id).in_([c.organisation_id for c in children]))).scalars()}
    signers: dict[int, list[tuple[int, str]]] = {i: [] for i in ids if i is not None}
    for party_id, person_id, name in session.execute(
            select(PartySignatory.party_case_id, PartySignatory.person_id, Person.name)
            .join(Person, col(Person.id) == col(PartySignatory.person_id))
            .where(col(PartySignatory.party_case_id).in_(ids)).order_by(col(PartySignatory.id))):
        signers[party_id].append((person_id, name))
    decisions: dict[int, Decision] = {}
    for d in session.execute(select(Decision).where(col(Decision.party_case_id).in_(ids),
                                                    col(Decision.voided_at).is_(None))
                             .order_by(col(Decision.id))).scalars():
        decisions[d.party_case_id] = d
    names = {pid: name for rows in signers.values() for pid, name in rows}
    sigs: dict[int, list[SignatureRead]] = {i: [] for i in ids if i is not None}
    for s in session.execute(select(Signature).where(col(Signature.party_case_id).in_(ids),
                                                     col(Signature.voided_at).is_(None))
                             .order_by(col(Signature.id))).scalars():
        sigs[s.party_case_id].append(SignatureRead(
            id=s.id or 0, person_id=s.person_id, person_name=names.get(s.person_id, ""),
            on_behalf_of_person_id=s.on_behalf_of_person_id, document_sha256=s.document_sha256,
            signed_at=s.signed_at))
    parties = []
    for c in children:
        cid = c.id or 0
        org = orgs[c.organisation_id or 0]
        signed_ids = {s.person_id for s in sigs[cid]}
        dec = decisions.get(cid)
        parties.append(PartyRead(
            case_id=cid, organisation=org.key, organisation_name=org.name_fi, state=c.state,
            required_signatures=int(c.data.get("required_signatures", 1)),
            signatories=[SignatoryRead(person_id=p, name=n, has_signed=p in signed_ids) for p, n in signers[cid]],
            decision=decision_read(dec) if dec else None, signatures=sigs[cid]))
    in_force_at = case.data.get("in_force_at")
    return AgreementRead(
        id=case.id or 0, title=case.title, state=case.state, version=case.version,
        workflow_version=case.workflow_version, deadline=case.deadline, coordinator_id=case.coordinator_id,
        document_version=doc.number if doc else 0, document_sha256=case.data["sha256"],
        document=doc.text if doc else "", in_force_sha256=case.data.get("in_force_sha256"),
        in_force_at=datetime.fromisoformat(in_force_at) if in_force_at else None,
        parties_total=len(parties),
        parties_approved=sum(p.state in ("approved", "signed") for p in parties),
        parties_signed=sum(p.state == "signed" for p in parties), parties=parties)
