"""What `vuosikello audit verify` checks of an agreement's records against the hashed events that recorded them.

The tables beside the event log (document texts, decisions, signatures) are what pages, the API and the sealed
record show; the events are what the hash chain and the checkpoints protect. Each check streams the records and the
events that recorded them, both ordered by case, and compares them field by field: an edited text, decision body or
§, a signature moved to another person, a record added or deleted without its event, is a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, or_, select, text
from sqlmodel import col

from engine.audit import ON_BEHALF_OF, AuditCheck, AuditProblem, Scope, merge_by_case, payload_of, stream
from engine.models import Case, Event, table_of
from workflows.agreement.cases import AGREEMENT, PARTY
from workflows.agreement.models import Decision, DocumentVersion, Signature
from workflows.agreement.service import sha256_text

_EVENT = (col(Event.case_id), col(Event.seq), col(Event.at), col(Event.actor_id), col(Event.trigger),
          col(Event.payload), col(Event.document_hash))


def _substitute_for(payload: dict[str, Any]) -> int | None:
    acting = payload.get(ON_BEHALF_OF)
    return int(acting["person_id"]) if isinstance(acting, dict) and acting.get("person_id") is not None else None


def check_documents(conn: Connection, scope: Scope) -> Iterator[AuditProblem]:
    """Re-hash every stored text (whatever the scope: a text edit touches no event), then match the versions of
    the agreements in scope to the events that recorded them."""
    yield from _texts_rehashed(conn)
    docs = stream(conn, select(col(DocumentVersion.case_id), col(DocumentVersion.id), col(DocumentVersion.number),
                               col(DocumentVersion.sha256)).where(scope.cases(DocumentVersion.case_id))
                  .order_by(col(DocumentVersion.case_id), col(DocumentVersion.number)))
    agreements = col(Event.case_id).in_(select(col(Case.id)).where(col(Case.workflow) == AGREEMENT))
    events = stream(conn, select(*_EVENT).where(agreements, scope.cases(Event.case_id),
                                                or_(col(Event.seq) == 1, col(Event.trigger) == "revise"))
                    .order_by(col(Event.case_id), col(Event.seq)))
    cases = stream(conn, select(col(Case.id), col(Case.data)).where(col(Case.workflow) == AGREEMENT,
                                                                    scope.cases(Case.id)).order_by(col(Case.id)))
    merged = merge_by_case(docs, events, lambda d: int(d.case_id), lambda e: int(e.case_id))
    for cid, pair, rows in merge_by_case(merged, cases, lambda m: m[0], lambda c: int(c.id)):
        versions, recorders = (pair[0][1], pair[0][2]) if pair else ([], [])
        yield from _documents_of(cid, versions, recorders, rows[0].data if rows else None)


def _texts_rehashed(conn: Connection) -> Iterator[AuditProblem]:
    """Yield every stored text whose SHA-256 is not the one stored beside it."""
    rows: list[tuple[Any, Any]]
    if conn.dialect.name == "postgresql":  # hashed where the texts are: only the mismatches cross the wire
        rows = [(r[0], r[1]) for r in conn.execute(text("SELECT case_id, number FROM document_version "
                                 "WHERE encode(sha256(convert_to(text, 'UTF8')), 'hex') <> sha256 "
                                 "ORDER BY case_id, number"))]
    else:
        rows = [(r.case_id, r.number) for r in stream(conn, select(
            col(DocumentVersion.case_id), col(DocumentVersion.number), col(DocumentVersion.text),
            col(DocumentVersion.sha256)).order_by(col(DocumentVersion.case_id), col(DocumentVersion.number)))
            if sha256_text(r.text) != r.sha256]
    for cid, number in rows:
        yield AuditProblem(int(cid), None, f"document version {number}: its text does not match its SHA-256 "
                                           "(the text was edited)")


def _documents_of(cid: int, versions: list[Any], recorders: list[Any],
                  data: dict[str, Any] | None) -> Iterator[AuditProblem]:
    recorded: dict[int, tuple[str, int]] = {}
    for ev in recorders:
        payload = payload_of(ev.payload)
        number = 1 if ev.seq == 1 else payload.get("version")
        if isinstance(number, int) and payload.get("sha256"):
            recorded[number] = (str(payload["sha256"]), ev.seq)
    if data is None and versions:
        yield AuditProblem(cid, None, "document versions without their agreement")
        return
    by_number = {}
    for v in versions:
        by_number[v.number] = v
        if v.number not in recorded:
            yield AuditProblem(cid, None, f"document version {v.number} was recorded by no event (added)")
        elif recorded[v.number][0] != v.sha256:
            yield AuditProblem(cid, recorded[v.number][1], f"document version {v.number}: its SHA-256 is not the "
                                                            "one this event recorded (the text was replaced)")
    for number, (_sha, seq) in sorted(recorded.items()):
        if number not in by_number:
            yield AuditProblem(cid, seq, f"document version {number} recorded by this event is missing (deleted)")
    if data is not None and recorded:
        last = max(recorded)
        current = next((v for v in versions if v.id == data.get("document_version_id")), None)
        if data.get("sha256") != recorded[last][0] or current is None or current.number != last:
            yield AuditProblem(cid, None, f"the agreement shows a text other than version {last}, the last one "
                                          "its events recorded")


def _party_events(conn: Connection, scope: Scope, triggers: tuple[str, ...]) -> Iterator[Any]:
    return stream(conn, select(*_EVENT).where(col(Event.trigger).in_(triggers), scope.cases(Event.case_id),
                                              col(Event.case_id).in_(select(col(Case.id))
                                                                     .where(col(Case.workflow) == PARTY)))
                  .order_by(col(Event.case_id), col(Event.seq)))


def check_decisions(conn: Connection, scope: Scope) -> Iterator[AuditProblem]:
    """Every decision row equals the approve/decline event that recorded it; none lacks its event."""
    rows = stream(conn, select(*table_of(Decision).c).where(scope.cases(Decision.party_case_id))
                  .order_by(col(Decision.party_case_id), col(Decision.id)))
    events = _party_events(conn, scope, ("approve", "decline"))
    for cid, decisions, recorders in merge_by_case(rows, events, lambda r: int(r.party_case_id),
                                                   lambda e: int(e.case_id)):
        by_id = {}
        for ev in recorders:
            payload = payload_of(ev.payload)
            by_id[payload.get("decision_id")] = (ev, payload)
        for d in decisions:
            found = by_id.pop(d.id, None)
            if found is None:
                yield AuditProblem(cid, None, f"decision {d.id} was recorded by no event (added)")
                continue
            ev, p = found
            recorded = {"outcome": "approved" if ev.trigger == "approve" else "declined", "body": p.get("body"),
                        "decided_on": p.get("decided_on"), "section": p.get("section"),
                        "minutes_url": p.get("minutes_url"), "note": p.get("note"),
                        "document_sha256": ev.document_hash, "recorded_by": ev.actor_id,
                        "on_behalf_of_person_id": _substitute_for(p), "recorded_at": ev.at}
            stored = {"outcome": d.outcome, "body": d.body, "decided_on": d.decided_on.isoformat(),
                      "section": d.section, "minutes_url": d.minutes_url, "note": d.note,
                      "document_sha256": d.document_sha256, "recorded_by": d.recorded_by,
                      "on_behalf_of_person_id": d.on_behalf_of_person_id, "recorded_at": d.recorded_at}
            changed = sorted(k for k in recorded if recorded[k] != stored[k])
            if changed:
                yield AuditProblem(cid, ev.seq, f"decision {d.id} differs from this event in "
                                                f"{', '.join(changed)} (edited)")
        for decision_id, (ev, _p) in by_id.items():
            yield AuditProblem(cid, ev.seq, f"decision {decision_id} recorded by this event is missing (deleted)")


def check_signatures(conn: Connection, scope: Scope) -> Iterator[AuditProblem]:
    """Every signature row names the signatory, substitute, text and time its sign event recorded."""
    rows = stream(conn, select(*table_of(Signature).c).where(scope.cases(Signature.party_case_id))
                  .order_by(col(Signature.party_case_id), col(Signature.id)))
    events = _party_events(conn, scope, ("sign",))
    for cid, signatures, recorders in merge_by_case(rows, events, lambda r: int(r.party_case_id),
                                                    lambda e: int(e.case_id)):
        by_id = {}
        for ev in recorders:
            payload = payload_of(ev.payload)
            by_id[payload.get("signature_id")] = (ev, payload)
        for s in signatures:
            found = by_id.pop(s.id, None)
            if found is None:
                yield AuditProblem(cid, None, f"signature {s.id} was recorded by no event (added)")
                continue
            ev, p = found
            principal = _substitute_for(p)
            recorded = {"person_id": p.get("signatory"), "document_sha256": ev.document_hash, "signed_at": ev.at,
                        "on_behalf_of_person_id": ev.actor_id if principal is not None else None}
            stored = {"person_id": s.person_id, "document_sha256": s.document_sha256, "signed_at": s.signed_at,
                      "on_behalf_of_person_id": s.on_behalf_of_person_id}
            changed = sorted(k for k in recorded if recorded[k] != stored[k])
            if principal is None and ev.actor_id != s.person_id and "person_id" not in changed:
                changed.append("person_id")
            if changed:
                yield AuditProblem(cid, ev.seq, f"signature {s.id} differs from this event in "
                                                f"{', '.join(changed)} (edited)")
        for signature_id, (ev, _p) in by_id.items():
            yield AuditProblem(cid, ev.seq, f"signature {signature_id} recorded by this event is missing (deleted)")


CHECKS: tuple[AuditCheck, ...] = (check_documents, check_decisions, check_signatures)
