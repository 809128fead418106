"""Read model of an agreement: state, current text and hash, each party with decision and signatures.

Six prebuilt statements select plain columns (no ORM objects: a 25-party agreement would otherwise load about 80
of them) into one nested dict whose keys follow `AgreementRead`'s fields. `read_agreement` validates it into the
model (the write routes read fields off it); `agreement_json` serialises it straight to JSON bytes: every value
already has its type from the columns, so the GET route skips pydantic's per-field validation (the test holds
the two outputs byte for byte equal). The GET route's ETag is `api.readcache`'s, a keyed hash of a fingerprint of
everything the read shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import BindParameter, bindparam, select
from sqlmodel import Session, col

from engine.calendar import effective_deadline
from engine.errors import NotFound
from engine.models import Case, Organisation, Person
from workflows.agreement.cases import AGREEMENT
from workflows.agreement.finality import read_fields
from workflows.agreement.models import Decision, DocumentVersion, PartySignatory, Signature
from workflows.agreement.schemas import AgreementRead, DecisionRead, DocumentVersionRead
from workflows.agreement.service import decision_citation

_AID: BindParameter[int] = bindparam("agreement_id")
_PARTY_OF_AGREEMENT = (col(Case.parent_id) == _AID)

_AGREEMENT = select(col(Case.id), col(Case.workflow), col(Case.title), col(Case.state), col(Case.version),
                    col(Case.workflow_version), col(Case.deadline), col(Case.coordinator_id), col(Case.data)
                    ).where(col(Case.id) == _AID)
_DOCUMENT = select(col(DocumentVersion.number), col(DocumentVersion.text)).where(
    col(DocumentVersion.id) == bindparam("document_id"))
_PARTIES = (select(col(Case.id), col(Case.state), col(Case.data), col(Organisation.key), col(Organisation.name_fi))
            .join(Organisation, col(Organisation.id) == col(Case.organisation_id))
            .where(_PARTY_OF_AGREEMENT).order_by(col(Case.id)))
_SIGNATORIES = (select(col(PartySignatory.party_case_id), col(PartySignatory.person_id), col(Person.name))
                .join(Person, col(Person.id) == col(PartySignatory.person_id))
                .join(Case, col(Case.id) == col(PartySignatory.party_case_id))
                .where(_PARTY_OF_AGREEMENT).order_by(col(PartySignatory.id)))
_DECISIONS = (select(col(Decision.party_case_id), col(Decision.id), col(Decision.outcome), col(Decision.body),
                     col(Decision.decided_on), col(Decision.section), col(Decision.minutes_url), col(Decision.note),
                     col(Decision.document_sha256), col(Decision.recorded_at), col(Decision.recorded_by),
                     col(Decision.on_behalf_of_person_id), col(Decision.published_on), col(Decision.notice_sent_on))
              .join(Case, col(Case.id) == col(Decision.party_case_id))
              .where(_PARTY_OF_AGREEMENT, col(Decision.voided_at).is_(None)).order_by(col(Decision.id)))
_SIGNATURES = (select(col(Signature.party_case_id), col(Signature.id), col(Signature.person_id),
                      col(Signature.on_behalf_of_person_id), col(Signature.document_sha256), col(Signature.signed_at))
               .join(Case, col(Case.id) == col(Signature.party_case_id))
               .where(_PARTY_OF_AGREEMENT, col(Signature.voided_at).is_(None)).order_by(col(Signature.id)))


def decision_read(d: Decision) -> DecisionRead:
    """Shape a decision for the API."""
    return DecisionRead(id=d.id or 0, outcome=d.outcome, body=d.body, decided_on=d.decided_on, section=d.section,
                        minutes_url=d.minutes_url, note=d.note, document_sha256=d.document_sha256,
                        citation=decision_citation(d), recorded_at=d.recorded_at, recorded_by_person_id=d.recorded_by,
                        on_behalf_of_person_id=d.on_behalf_of_person_id,
                        **read_fields(d.published_on, d.notice_sent_on, ()))


def _decision(row: Any) -> dict[str, Any]:
    return {"id": row.id, "outcome": row.outcome, "body": row.body, "decided_on": row.decided_on,
            "section": row.section, "minutes_url": row.minutes_url, "note": row.note,
            "document_sha256": row.document_sha256, "citation": decision_citation(row),
            "recorded_at": row.recorded_at, "recorded_by_person_id": row.recorded_by,
            "on_behalf_of_person_id": row.on_behalf_of_person_id, "on_behalf_of_name": None}


def _name_substitutes(conn: Any, parties: dict[int, dict[str, Any]], names: dict[int, str]) -> None:
    """Name whom a substitute acted for and who signed as a substitute (one query, only when there are any)."""
    wanted = {s["on_behalf_of_person_id"] for p in parties.values() for s in p["signatures"]}
    wanted |= {p["decision"]["on_behalf_of_person_id"] for p in parties.values() if p["decision"]}
    wanted -= {None, *names}
    if wanted:
        names.update(dict(conn.execute(select(col(Person.id), col(Person.name))
                                       .where(col(Person.id).in_(wanted))).all()))
    for party in parties.values():
        for s in party["signatures"]:
            s["substitute_name"] = names.get(s["on_behalf_of_person_id"]) if s["on_behalf_of_person_id"] else None
        d = party["decision"]
        if d and d["on_behalf_of_person_id"]:
            d["on_behalf_of_name"] = names.get(d["on_behalf_of_person_id"])


def _agreement(session: Session, agreement_id: int) -> dict[str, Any]:
    """Load one agreement with all its parties in six queries, whatever the number of parties."""
    params = {"agreement_id": agreement_id}
    conn = session.connection()  # Core statements: the Session's ORM execution layer has nothing to add here
    case = conn.execute(_AGREEMENT, params).first()
    if case is None or case.workflow != AGREEMENT:
        raise NotFound(f"no agreement with id {agreement_id}")
    doc = conn.execute(_DOCUMENT, {"document_id": case.data["document_version_id"]}).first()
    parties: dict[int, dict[str, Any]] = {}
    claims: dict[int, list[dict[str, Any]]] = {}
    for p in conn.execute(_PARTIES, params):
        claims[p.id] = p.data.get("claims") or []  # workflows/agreement/claims.py keeps the copy
        parties[p.id] = {"case_id": p.id, "organisation": p.key, "organisation_name": p.name_fi, "state": p.state,
                         "required_signatures": int(p.data.get("required_signatures", 1)), "signatories": [],
                         "decision": None, "signatures": []}
    names: dict[int, str] = {}
    for party_id, person_id, name in conn.execute(_SIGNATORIES, params):
        parties[party_id]["signatories"].append({"person_id": person_id, "name": name, "has_signed": False})
        names[person_id] = name
    for d in conn.execute(_DECISIONS, params):
        parties[d.party_case_id]["decision"] = {  # the newest valid one wins; its claims are copied on the party
            **_decision(d), **read_fields(d.published_on, d.notice_sent_on, claims.get(d.party_case_id, ()))}
    for s in conn.execute(_SIGNATURES, params):
        party = parties[s.party_case_id]
        party["signatures"].append({"id": s.id, "person_id": s.person_id, "person_name": names.get(s.person_id, ""),
                                    "on_behalf_of_person_id": s.on_behalf_of_person_id, "substitute_name": None,
                                    "document_sha256": s.document_sha256, "signed_at": s.signed_at})
    _name_substitutes(conn, parties, names)
    for party in parties.values():
        signed = {s["person_id"] for s in party["signatures"]}
        for signatory in party["signatories"]:
            signatory["has_signed"] = signatory["person_id"] in signed
    states = [p["state"] for p in parties.values()]
    in_force_at = case.data.get("in_force_at")
    return {
        "id": case.id, "title": case.title, "state": case.state, "version": case.version,
        "workflow_version": case.workflow_version, "deadline": case.deadline,
        "effective_deadline": effective_deadline(case.deadline) if case.deadline else None,
        "coordinator_id": case.coordinator_id,
        "document_version": doc.number if doc else 0, "document_sha256": case.data["sha256"],
        "document": doc.text if doc else "", "in_force_sha256": case.data.get("in_force_sha256"),
        "in_force_at": datetime.fromisoformat(in_force_at) if in_force_at else None,
        "parties_total": len(states), "parties_approved": sum(s in ("approved", "signed") for s in states),
        "parties_signed": sum(s == "signed" for s in states), "parties": list(parties.values())}


def read_agreement(session: Session, agreement_id: int) -> AgreementRead:
    """Load one agreement with all its parties, validated into the API model."""
    return AgreementRead.model_validate(_agreement(session, agreement_id))


def agreement_json(session: Session, agreement_id: int) -> bytes:
    """Return what `read_agreement` returns as JSON bytes, without validating the values the columns typed."""
    return to_json(_agreement(session, agreement_id))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Tell whether an If-None-Match header names the ETag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def document_versions(session: Session, agreement_id: int) -> list[DocumentVersionRead]:
    """Return every stored version of an agreement's text, oldest first (the text itself by `document_text`)."""
    current = session.execute(select(col(Case.data)).where(col(Case.id) == agreement_id)).scalar_one_or_none()
    if current is None:
        raise NotFound(f"no agreement with id {agreement_id}")
    rows = session.execute(select(col(DocumentVersion.number), col(DocumentVersion.sha256), col(DocumentVersion.note),
                                  col(DocumentVersion.created_at))
                           .where(col(DocumentVersion.case_id) == agreement_id)
                           .order_by(col(DocumentVersion.number))).all()
    now = int(current.get("document_version", 0))
    return [DocumentVersionRead(number=r.number, sha256=r.sha256, note=r.note, created_at=r.created_at,
                                current=r.number == now) for r in rows]


def document_text(session: Session, agreement_id: int, number: int) -> tuple[str, str]:
    """Return one version's stored text and its recorded SHA-256, exactly as hashed."""
    row = session.execute(select(col(DocumentVersion.text), col(DocumentVersion.sha256)).where(
        col(DocumentVersion.case_id) == agreement_id, col(DocumentVersion.number) == number)).first()
    if row is None:
        raise NotFound(f"agreement {agreement_id} has no version {number}")
    return row.text, row.sha256
