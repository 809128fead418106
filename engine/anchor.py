"""Writing audit checkpoints: after every entry into a state tagged `anchor` (an agreement entering into force),
daily, both from the scheduler's leader, and on demand (`vuosikello audit checkpoint`). The key comes from a file or
a setting and is never written to the database; without a key nothing is stored (an unsigned checkpoint is useful
only exported).

An entry into an anchor state is not checkpointed inside the request that caused it: hashing the whole log takes
seconds on a large database. The leader's checkpoint job finds such entries in the log itself (events since the
newest checkpoint), so one committed before a crash or a change of leader is still anchored by the next leader.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from engine.audit import Checkpoint, key_id, state_as_of
from engine.errors import Conflict
from engine.models import AuditCheckpoint, Case, Event
from engine.service import Engine, UnitOfWork
from engine.settings import Settings

log = logging.getLogger("vuosikello.audit")
ANCHOR_TAG = "anchor"
DAILY = timedelta(days=1)
MIN_KEY_BYTES = 32
# Event ids are handed out before their transactions commit, so a scan also looks this far below the highest id it
# saw last time: an entry whose transaction committed after a later one is still found.
SCAN_LAG = 1000


class AuditKeyError(ValueError):
    """The configured audit key cannot be read or is too short."""


def audit_key(settings: Settings) -> bytes | None:
    """Return the checkpoint key from `audit_key_file` (preferred) or `audit_key`, or None when neither is set."""
    if settings.audit_key_file is not None:
        path = Path(settings.audit_key_file)
        try:
            raw = path.read_bytes().strip()
        except OSError as exc:
            raise AuditKeyError(f"VUOSIKELLO_AUDIT_KEY_FILE {path}: {exc.strerror}") from None
    elif settings.audit_key is not None:
        raw = settings.audit_key.get_secret_value().encode()
    else:
        return None
    if len(raw) < MIN_KEY_BYTES:
        raise AuditKeyError(f"the audit key must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)")
    return raw


def _boundary(uow: UnitOfWork) -> int:
    """Return the newest event id such that every event up to it is committed and none can appear below it."""
    conn = uow.session.connection()
    if conn.dialect.name == "postgresql":
        # SHARE mode waits for the transactions writing events now and holds new ones for this instant only:
        # an id handed out but not yet committed could otherwise commit below the boundary afterwards.
        conn.execute(text("LOCK TABLE event IN SHARE MODE"))
    # SQLite: this write transaction already excludes every other writer.
    newest = conn.execute(select(func.max(col(Event.id)))).scalar_one()
    return int(newest or 0)


def build_checkpoint(engine: Engine, reason: str, key: bytes | None,
                     fence: Callable[[UnitOfWork], None] | None = None) -> Checkpoint:
    """Take the state of the log now and sign it (when a key is given); store it only when signed."""
    def boundary(uow: UnitOfWork) -> int:
        if fence is not None:
            fence(uow)
        return _boundary(uow)

    last = engine.run(boundary)
    with Session(engine.db.engine) as session:
        state = state_as_of(session.connection(), last)
    for _attempt in range(3):
        try:
            return engine.run(lambda uow: _store(uow, state.last_event_id, state.cases, state.events, state.root,
                                                 reason, key))
        except Conflict:  # another process stored the same sequence number meanwhile
            continue
    raise Conflict("could not store the checkpoint: others kept storing theirs")


def _store(uow: UnitOfWork, last_event_id: int, cases: int, events: int, root: str, reason: str,
           key: bytes | None) -> Checkpoint:
    session = uow.session
    prev = None
    if key is not None:
        prev = session.execute(select(AuditCheckpoint).where(col(AuditCheckpoint.key_id) == key_id(key))
                               .order_by(col(AuditCheckpoint.seq).desc()).limit(1)).scalars().first()
    newest_seq = session.execute(select(func.coalesce(func.max(col(AuditCheckpoint.seq)), 0))).scalar_one()
    cp = Checkpoint(seq=int(newest_seq) + 1, created_at=uow.now.isoformat(), reason=reason[:200],
                    last_event_id=last_event_id, cases=cases, events=events, root=root,
                    previous=prev.mac if prev is not None else None)
    if key is None:
        return cp
    cp = cp.signed(key)
    session.add(AuditCheckpoint(seq=cp.seq, created_at=cp.created_at, reason=cp.reason,
                                last_event_id=cp.last_event_id, cases=cp.cases, events=cp.events, root=cp.root,
                                previous=cp.previous, key_id=cp.key_id or "", mac=cp.mac or ""))
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("another checkpoint took this sequence number") from exc
    return cp


class Anchor:
    """Writes checkpoints after cases entered an `anchor` state, and once a day (the scheduler leader's job)."""

    def __init__(self, engine: Engine, key: bytes | None) -> None:
        self.engine = engine
        self.key = key
        self._next_daily: datetime | None = None
        self._scanned: int | None = None  # the highest event id the last scan for anchor entries saw

    def _newest_covered(self) -> int:
        """Return the last event id the newest checkpoint under this key covers (0: none yet)."""
        assert self.key is not None
        with self.engine.db.read_session() as session:
            newest = session.execute(select(col(AuditCheckpoint.last_event_id)).where(
                col(AuditCheckpoint.key_id) == key_id(self.key))
                .order_by(col(AuditCheckpoint.seq).desc()).limit(1)).scalar()
        return int(newest or 0)

    def catch_up(self, fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Write a checkpoint when a case entered an anchor state after the newest checkpoint; return 1 if written.

        One checkpoint covers every entry committed before it, so a burst of entries costs one. Found in the log,
        not remembered in memory: nothing is lost when the process that committed the entry died right after.
        """
        if self.key is None:
            return 0
        registry = self.engine.registry
        tagged = {name: registry.tagged(name, ANCHOR_TAG) for name in {n for n, _v in registry.machines}}
        entries = [and_(col(Case.workflow) == name, col(Event.to_state).in_(states))
                   for name, states in sorted(tagged.items()) if states]
        if not entries:
            return 0
        if self._scanned is None:
            self._scanned = self._newest_covered()
        with self.engine.db.read_session() as session:
            newest = int(session.execute(select(func.max(col(Event.id)))).scalar() or 0)
            found = session.execute(
                select(col(Event.id), col(Event.case_id), col(Case.workflow), col(Event.name))
                .join(Case, col(Case.id) == col(Event.case_id))
                .where(col(Event.id) > max(self._scanned - SCAN_LAG, 0), col(Event.id) <= newest, or_(*entries),
                       or_(col(Event.from_state).is_(None), col(Event.from_state) != col(Event.to_state)))
                .order_by(col(Event.id).desc()).limit(1)).first()
        if found is None or found[0] <= self._newest_covered():  # nothing new, or a later checkpoint covers it
            self._scanned = newest
            return 0
        if self.write(f"{found[2]} {found[1]} {found[3]}", fence) is None:
            return 0  # logged; tried again on the next run
        self._scanned = newest
        return 1

    def write(self, reason: str, fence: Callable[[UnitOfWork], None] | None = None) -> Checkpoint | None:
        """Write one checkpoint now; a failure is logged, never raised into the request that caused it."""
        try:
            return build_checkpoint(self.engine, reason, self.key, fence)
        except Exception:  # noqa: BLE001 - the transition is committed; the next checkpoint covers it too
            log.exception("writing an audit checkpoint failed (%s)", reason)
            return None

    def daily(self, fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Scheduler job: anchor recent entries into anchor states (`catch_up`), and write a checkpoint when the
        newest is a day old (or there is none); return how many were written."""
        if self.key is None:
            return 0
        caught = self.catch_up(fence)
        now = self.engine.clock.now()
        if self._next_daily is None:
            with Session(self.engine.db.engine) as session:
                newest = session.execute(select(col(AuditCheckpoint.created_at)).where(
                    col(AuditCheckpoint.key_id) == key_id(self.key))
                    .order_by(col(AuditCheckpoint.seq).desc()).limit(1)).scalar()
            self._next_daily = datetime.fromisoformat(newest) + DAILY if newest else now
        if now < self._next_daily:
            return caught
        written = self.write("daily", fence)
        self._next_daily = now + DAILY if written else now + timedelta(minutes=5)
        return caught + (1 if written else 0)
