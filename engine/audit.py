"""The hash chain over each case's events, and the verification that detects edits, deletions and reordering."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from engine.models import Case, Event

GENESIS = "0" * 64


# One encoder for every event: json.dumps with non-default options builds a new encoder on each call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> str:
    """Serialise deterministically (sorted keys, no spaces, ISO dates)."""
    return _CANONICAL.encode(value)


def event_hash(*, case_id: int, seq: int, at: datetime, actor_id: int | None, on_behalf_of_id: int | None,
               trigger: str, name: str, from_state: str | None, to_state: str, payload_json: str,
               document_hash: str | None, prev_hash: str) -> str:
    """Return the SHA-256 that seals one event to its predecessor."""
    body = "\x1f".join([
        str(case_id), str(seq), at.isoformat(), str(actor_id), str(on_behalf_of_id), trigger, name,
        str(from_state), to_state, payload_json, str(document_hash), prev_hash,
    ])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    """One inconsistency found in a case's chain."""

    case_id: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" event #{self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


def verify_case(case: Case, events: list[Event]) -> list[AuditProblem]:
    """Check one case's events: contiguous sequence, links, hashes, and the head stored on the case."""
    problems: list[AuditProblem] = []
    prev = GENESIS
    cid = case.id or 0
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            problems.append(AuditProblem(cid, ev.seq, f"sequence gap or reorder: expected #{expected_seq}"))
        if ev.prev_hash != prev:
            problems.append(AuditProblem(cid, ev.seq, "does not link to the previous event"))
        recomputed = event_hash(
            case_id=ev.case_id, seq=ev.seq, at=ev.at, actor_id=ev.actor_id, on_behalf_of_id=ev.on_behalf_of_id,
            trigger=ev.trigger, name=ev.name, from_state=ev.from_state, to_state=ev.to_state,
            payload_json=ev.payload, document_hash=ev.document_hash, prev_hash=ev.prev_hash,
        )
        if recomputed != ev.hash:
            problems.append(AuditProblem(cid, ev.seq, "content does not match its hash (edited)"))
        prev = ev.hash
    if case.event_count != len(events):
        problems.append(AuditProblem(cid, None, f"case records {case.event_count} events, found {len(events)}"))
    if case.head_hash != prev:
        problems.append(AuditProblem(cid, None, "last event is not the head recorded on the case"))
    return problems


def verify_all(session: Session, *, batch: int = 500) -> tuple[int, int, list[AuditProblem]]:
    """Verify every case; return (cases checked, events checked, problems)."""
    problems: list[AuditProblem] = []
    n_cases = n_events = 0
    last_id = 0
    while True:
        cases = session.scalars(
            select(Case).where(col(Case.id) > last_id).order_by(col(Case.id)).limit(batch)
        ).all()
        if not cases:
            break
        ids = [c.id or 0 for c in cases]  # rows read back from the table: never None
        rows = session.scalars(
            select(Event).where(col(Event.case_id).in_(ids)).order_by(col(Event.case_id), col(Event.id))
        ).all()
        by_case: dict[int, list[Event]] = {i: [] for i in ids}
        for ev in rows:
            by_case[ev.case_id].append(ev)
        for case, cid in zip(cases, ids, strict=True):
            problems.extend(verify_case(case, by_case[cid]))
            n_events += len(by_case[cid])
        n_cases += len(cases)
        last_id = ids[-1]
    # events whose case is gone entirely
    orphans = session.scalars(
        select(col(Event.case_id)).where(col(Event.case_id).not_in(select(col(Case.id)))).distinct()
    ).all()
    problems.extend(AuditProblem(cid, None, "events without their case") for cid in orphans)
    return n_cases, n_events, problems
