"""The hash chain over each case's events, signed checkpoints that anchor it, and the verification of both.

What the chain alone proves: an event edited, deleted or moved without recomputing every later hash and the head
on the case. What it cannot prove: someone who can write to the database can recompute a case's whole chain, or
drop a case's last event and fix the head, or delete an agreement with its parties; the chain has no key. A
*checkpoint* closes that gap: an HMAC-SHA256, under a key that is never stored in the database, over the head of
every case as of one event id (their number, the number of events and a digest of all heads). Verifying against
a checkpoint (with the key, or one exported earlier to a file) finds any change to what it covered. SECURITY.md
says what this protects against and what it does not.

Verification streams: the cases and their events are read in two ordered queries (server-side cursors) and
merged, whatever the number of cases; the checks that workflows add (document texts, decisions, signatures,
substitutes against the events that recorded them) do the same. `since` limits the chain re-hash and the checks to
the cases with events after a trusted checkpoint; the state as of the checkpoint is then re-derived with one
set-based query and compared with its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Connection, DateTime, func, select, true, type_coerce
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import Session, col

from engine.models import AuditCheckpoint, Case, Event

GENESIS = "0" * 64
ON_BEHALF_OF = "on_behalf_of"  # the payload key a substitute's event records whom they acted for under
CHECKPOINT_FORMAT = "vuosikello-audit-checkpoint/1"
STREAM = 20_000  # rows fetched per round trip by the streaming queries


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
    """One inconsistency found in a case's chain, in a record checked against it, or against a checkpoint."""

    case_id: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f" event #{self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}" if self.case_id else f"log: {self.problem}"


# -- scope and the checks workflows add -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which cases a verification looks at: all, or those with events after a checkpoint's last event."""

    after_event_id: int | None = None

    def cases(self, case_column: InstrumentedAttribute[int] | Any) -> ColumnElement[bool]:
        """Return the condition limiting a case-id column to the scope (set-based: one subquery)."""
        if self.after_event_id is None:
            return true()
        return col(case_column).in_(select(col(Event.case_id)).where(col(Event.id) > self.after_event_id))


class AuditCheck(Protocol):
    """Check records of one kind against the events that recorded them; yield what does not match."""

    def __call__(self, conn: Connection, scope: Scope, /) -> Iterable[AuditProblem]: ...


K = TypeVar("K")
L = TypeVar("L")
R = TypeVar("R")


def merge_by_case(left: Iterable[L], right: Iterable[R], left_key: Callable[[L], int],
                  right_key: Callable[[R], int]) -> Iterator[tuple[int, list[L], list[R]]]:
    """Merge two streams each ordered by case id; yield (case id, its left rows, its right rows)."""
    li, ri = iter(left), iter(right)
    lrow, rrow = next(li, None), next(ri, None)
    while lrow is not None or rrow is not None:
        lk = left_key(lrow) if lrow is not None else None
        rk = right_key(rrow) if rrow is not None else None
        cid = min(k for k in (lk, rk) if k is not None)
        ls: list[L] = []
        rs: list[R] = []
        while lrow is not None and left_key(lrow) == cid:
            ls.append(lrow)
            lrow = next(li, None)
        while rrow is not None and right_key(rrow) == cid:
            rs.append(rrow)
            rrow = next(ri, None)
        yield cid, ls, rs


def stream(conn: Connection, statement: Any) -> Iterator[Any]:
    """Execute a select on a server-side cursor (PostgreSQL) and yield its rows in batches."""
    result = conn.execution_options(stream_results=True, yield_per=STREAM).execute(statement)
    yield from result


def payload_of(text: str) -> dict[str, Any]:
    """Parse an event's stored payload (canonical JSON); an unreadable one counts as empty."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the chains -----------------------------------------------------------------------------------------------

# `at` read as the plain naive UTC it is stored as (the UTCDateTime decorator would cost a replace() per event);
# Python's isoformat() of the aware value is the naive one's plus "+00:00".
_EVENT_COLUMNS = (col(Event.case_id), col(Event.seq), type_coerce(col(Event.at), DateTime()).label("at"),
                  col(Event.actor_id), col(Event.on_behalf_of_id), col(Event.trigger), col(Event.name),
                  col(Event.from_state), col(Event.to_state), col(Event.payload), col(Event.document_hash),
                  col(Event.prev_hash), col(Event.hash))
_SEP = "\x1f"


def _check_chain(cid: int, head: tuple[int, str] | None, events: list[Any]) -> list[AuditProblem]:
    """Check one case's streamed event rows (tuples in _EVENT_COLUMNS order) against its recorded head."""
    problems: list[AuditProblem] = []
    if head is None:
        return [AuditProblem(cid, None, "events without their case")]
    prev = GENESIS
    sha256 = hashlib.sha256
    for expected_seq, ev in enumerate(events, start=1):
        (case_id, seq, at, actor_id, on_behalf_of_id, trigger, name, from_state, to_state, payload, document_hash,
         prev_hash, digest) = ev
        if seq != expected_seq:
            problems.append(AuditProblem(cid, seq, f"sequence gap or reorder: expected #{expected_seq}"))
        if prev_hash != prev:
            problems.append(AuditProblem(cid, seq, "does not link to the previous event"))
        at_text = at.isoformat() + "+00:00" if at.tzinfo is None else at.isoformat()
        body = _SEP.join((str(case_id), str(seq), at_text, str(actor_id), str(on_behalf_of_id), trigger, name,
                          str(from_state), to_state, payload, str(document_hash), prev_hash))
        if sha256(body.encode("utf-8")).hexdigest() != digest:  # event_hash(), inlined for the hot loop
            problems.append(AuditProblem(cid, seq, "content does not match its hash (edited)"))
        prev = digest
    count, head_hash = head
    if count != len(events):
        problems.append(AuditProblem(cid, None, f"case records {count} events, found {len(events)}"))
    if head_hash != prev:
        problems.append(AuditProblem(cid, None, "last event is not the head recorded on the case"))
    return problems


def verify_case(case: Case, events: list[Event]) -> list[AuditProblem]:
    """Check one case's events: contiguous sequence, links, hashes, and the head stored on the case."""
    rows = [(e.case_id, e.seq, e.at, e.actor_id, e.on_behalf_of_id, e.trigger, e.name, e.from_state, e.to_state,
             e.payload, e.document_hash, e.prev_hash, e.hash) for e in events]
    return _check_chain(case.id or 0, (case.event_count, case.head_hash), rows)


def verify_chains(conn: Connection, scope: Scope) -> tuple[int, int, list[AuditProblem]]:
    """Re-hash every event in scope, in two streamed queries; return (cases, events, problems)."""
    cases = stream(conn, select(col(Case.id), col(Case.event_count), col(Case.head_hash))
                   .where(scope.cases(Case.id)).order_by(col(Case.id)))
    events = stream(conn, select(*_EVENT_COLUMNS).where(scope.cases(Event.case_id))
                    .order_by(col(Event.case_id), col(Event.seq)))
    problems: list[AuditProblem] = []
    n_cases = n_events = 0
    for cid, heads, evs in merge_by_case(cases, events, itemgetter(0), itemgetter(0)):
        if heads:
            n_cases += 1
        n_events += len(evs)
        problems += _check_chain(cid, (heads[0][1], heads[0][2]) if heads else None, evs)
    return n_cases, n_events, problems


def verify_orphans(conn: Connection) -> list[AuditProblem]:
    """Set-based, over the whole log: no event lacks its case (a case row deleted under its events)."""
    orphans = conn.execute(select(col(Event.case_id)).distinct().where(
        ~select(col(Case.id)).where(col(Case.id) == col(Event.case_id)).exists())).scalars()
    return [AuditProblem(int(cid or 0), None, "events without their case") for cid in orphans]


# -- checkpoints ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateDigest:
    """The heads of every case as of one event id: how many cases, how many events, and a digest of all heads."""

    last_event_id: int
    cases: int
    events: int
    root: str


def state_as_of(conn: Connection, last_event_id: int) -> StateDigest:
    """Derive each case's head as of an event id (one grouped query, streamed) and digest them in case order."""
    upto = (select(col(Event.case_id).label("cid"), func.max(col(Event.seq)).label("last"))
            .where(col(Event.id) <= last_event_id).group_by(col(Event.case_id)).subquery())
    rows = stream(conn, select(col(Event.case_id), col(Event.seq), col(Event.hash))
                  .join(upto, (upto.c.cid == col(Event.case_id)) & (upto.c.last == col(Event.seq)))
                  .where(col(Event.id) <= last_event_id).order_by(col(Event.case_id)))
    digest = hashlib.sha256(b"vuosikello-heads/1\n")
    n_cases = n_events = 0
    for cid, seq, head in rows:
        digest.update(f"{cid} {seq} {head}\n".encode())
        n_cases += 1
        n_events += seq
    return StateDigest(last_event_id, n_cases, n_events, digest.hexdigest())


def key_id(key: bytes) -> str:
    """Name a key without revealing it (the first 16 hex digits of a hash of it)."""
    return hashlib.sha256(b"vuosikello-audit-key-id\n" + key).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """A signed (or, without a key, merely exported) statement of the log's state as of one event id."""

    seq: int
    created_at: str
    reason: str
    last_event_id: int
    cases: int
    events: int
    root: str
    previous: str | None = None
    key_id: str | None = None
    mac: str | None = None

    def body(self) -> str:
        """Return the canonical text the MAC covers."""
        return canonical_json({"format": CHECKPOINT_FORMAT, "seq": self.seq, "created_at": self.created_at,
                               "reason": self.reason, "last_event_id": self.last_event_id, "cases": self.cases,
                               "events": self.events, "root": self.root, "previous": self.previous,
                               "key_id": self.key_id})

    def signed(self, key: bytes) -> Checkpoint:
        """Return this checkpoint with its key id and HMAC-SHA256 under a key."""
        unsigned = Checkpoint(self.seq, self.created_at, self.reason, self.last_event_id, self.cases, self.events,
                              self.root, self.previous, key_id(key))
        mac = hmac.new(key, unsigned.body().encode(), hashlib.sha256).hexdigest()
        return Checkpoint(**{**unsigned.__dict__, "mac": mac})

    def mac_valid(self, key: bytes) -> bool:
        """Tell whether the MAC is this checkpoint's under a key (constant-time comparison)."""
        if not self.mac:
            return False
        expected = hmac.new(key, self.body().encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.mac)

    def to_json(self) -> str:
        """Return the exported form (one JSON object)."""
        return json.dumps({**json.loads(self.body()), "mac": self.mac}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Read an exported checkpoint; raise ValueError on anything else."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a {CHECKPOINT_FORMAT} file")
        try:
            return cls(seq=int(data["seq"]), created_at=str(data["created_at"]), reason=str(data["reason"]),
                       last_event_id=int(data["last_event_id"]), cases=int(data["cases"]),
                       events=int(data["events"]), root=str(data["root"]), previous=data.get("previous"),
                       key_id=data.get("key_id"), mac=data.get("mac"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete checkpoint: {exc}") from None

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        """Read a stored checkpoint row."""
        return cls(seq=row.seq, created_at=row.created_at, reason=row.reason, last_event_id=row.last_event_id,
                   cases=row.cases, events=row.events, root=row.root, previous=row.previous, key_id=row.key_id,
                   mac=row.mac)


def compare_with(conn: Connection, cp: Checkpoint, label: str) -> list[AuditProblem]:
    """Re-derive the state a checkpoint covered and name every difference."""
    now = state_as_of(conn, cp.last_event_id)
    problems = []
    if now.cases != cp.cases:
        problems.append(AuditProblem(0, None, f"{label} covered {cp.cases} cases up to event {cp.last_event_id}, "
                                              f"the log now has {now.cases} (cases deleted or added)"))
    if now.events != cp.events:
        problems.append(AuditProblem(0, None, f"{label} covered {cp.events} events, the log now has {now.events} "
                                              f"up to event {cp.last_event_id} (events deleted or added)"))
    if now.root != cp.root:
        problems.append(AuditProblem(0, None, f"{label}: the heads of the cases it covered have changed "
                                              "(a chain was rewritten, truncated or deleted)"))
    return problems


def verify_stored_checkpoints(session: Session, key: bytes) -> tuple[Checkpoint | None, list[AuditProblem], list[str]]:
    """Check the MACs and the chain of the stored checkpoints signed with a key; return the newest valid one, the
    problems and notes. Rows of another key (an earlier key, after a rotation) are noted, not trusted; when rows
    exist but none is of this key, that is a problem (a wrong key would otherwise pass as "no checkpoint")."""
    rows = session.execute(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))).scalars().all()
    problems: list[AuditProblem] = []
    notes: list[str] = []
    newest: Checkpoint | None = None
    previous: Checkpoint | None = None  # the previous row of this key, valid or not
    kid = key_id(key)
    others = 0
    for row in rows:
        cp = Checkpoint.from_row(row)
        label = f"stored checkpoint #{cp.seq}"
        if cp.key_id != kid:
            others += 1
            continue
        if not cp.mac_valid(key):
            problems.append(AuditProblem(0, None, f"{label}: its signature does not match (forged or edited)"))
        elif cp.previous != (previous.mac if previous is not None else None):
            after = f"#{previous.seq}" if previous is not None else "the first of this key"
            problems.append(AuditProblem(0, None, f"{label} does not follow {after} "
                                                  "(a checkpoint was deleted)"))
            newest = cp
        else:
            newest = cp
        previous = cp
    if others and previous is None:
        problems.append(AuditProblem(0, None, f"none of the {others} stored checkpoints is signed with this key "
                                              f"({kid}): a wrong key, or they were replaced"))
    elif others:
        notes.append(f"{others} stored checkpoints are signed with another (earlier) key and were not used")
    return newest, problems, notes


@dataclass
class AuditReport:
    """What a verification checked and found; unpacks as (cases, events, problems)."""

    cases: int
    events: int
    problems: list[AuditProblem]
    notes: list[str] = field(default_factory=list)
    anchor: Checkpoint | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cases, self.events, self.problems))

    def __getitem__(self, index: int) -> Any:
        return (self.cases, self.events, self.problems)[index]


class NoTrustedCheckpoint(ValueError):
    """`since` was asked for without a checkpoint to start from (a file, or a stored one and the key)."""


def verify_all(session: Session, *, checks: Iterable[AuditCheck] = (), key: bytes | None = None,
               checkpoint: Checkpoint | None = None, since: bool = False) -> AuditReport:
    """Verify the log: chains, the records the checks cover, and the anchor (a checkpoint file, or the stored
    checkpoints when the key is given). With `since`, only what came after the anchor is re-hashed."""
    conn = session.connection()
    problems: list[AuditProblem] = []
    notes: list[str] = []
    anchors: list[tuple[Checkpoint, str]] = []
    if key is not None:
        stored, stored_problems, stored_notes = verify_stored_checkpoints(session, key)
        problems += stored_problems
        notes += stored_notes
        if stored is not None:
            anchors.append((stored, f"stored checkpoint #{stored.seq}"))
        else:
            notes.append("no stored checkpoint signed with this key")
    if checkpoint is not None:
        label = f"checkpoint file #{checkpoint.seq}"
        if checkpoint.mac and key is not None:
            if checkpoint.key_id != key_id(key) or not checkpoint.mac_valid(key):
                problems.append(AuditProblem(0, None, f"{label}: its signature does not match this key"))
        elif checkpoint.mac:
            notes.append(f"{label}: signature not checked (no key); trusted as the file kept outside the database")
        else:
            notes.append(f"{label} is unsigned; trusted as the file kept outside the database")
        anchors.insert(0, (checkpoint, label))
    anchor = anchors[0][0] if anchors else None
    if since and anchor is None:
        raise NoTrustedCheckpoint("--since needs a checkpoint: give --checkpoint FILE or configure the audit key")
    for cp, label in anchors:
        problems += compare_with(conn, cp, label)
    scope = Scope(anchor.last_event_id if since and anchor is not None else None)
    cases, events, chain_problems = verify_chains(conn, scope)
    problems += chain_problems
    if scope.after_event_id is not None:
        # a case untouched since the checkpoint: its chain is covered by the digest; an edited head only matters
        # when the next event chains to it, and that case is then in scope
        problems += [p for p in verify_orphans(conn) if p not in problems]
        notes.append(f"verified the cases with events after event {scope.after_event_id} "
                     f"(checkpoint #{anchor.seq if anchor else 0}); the rest against the checkpoint's digest")
    for check in checks:
        problems += check(conn, scope)
    return AuditReport(cases, events, problems, notes, anchor)
