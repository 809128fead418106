"""Writing audit checkpoints: at every entry into a state tagged `anchor` (an agreement entering into force), daily
from the scheduler, and on demand (`vuosikello audit checkpoint`). The key comes from a file or a setting and is
never written to the database; without a key nothing is stored (an unsigned checkpoint is useful only exported).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from engine.audit import Checkpoint, key_id, state_as_of
from engine.errors import Conflict
from engine.models import AuditCheckpoint, Event
from engine.records import TransitionRecord
from engine.service import Engine, UnitOfWork
from engine.settings import Settings

log = logging.getLogger("vuosikello.audit")
ANCHOR_TAG = "anchor"
DAILY = timedelta(days=1)
MIN_KEY_BYTES = 32


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
    """Writes checkpoints when a case enters an `anchor` state (after its commit) and once a day."""

    def __init__(self, engine: Engine, key: bytes | None) -> None:
        self.engine = engine
        self.key = key
        self._next_daily: datetime | None = None

    def on_transition(self, uow: UnitOfWork, record: TransitionRecord) -> None:
        """Registry listener: after the commit of an entry into an anchor state, write a checkpoint."""
        if self.key is None or not record.changed_state:
            return
        if not uow.machine_of(record.case).definition.has_tag(record.to_state, ANCHOR_TAG):
            return
        reason = f"{record.case.workflow} {record.case.id} {record.event_name}"
        def write() -> None:
            self.write(reason)
        uow.after_commit(write)

    def write(self, reason: str, fence: Callable[[UnitOfWork], None] | None = None) -> Checkpoint | None:
        """Write one checkpoint now; a failure is logged, never raised into the request that caused it."""
        try:
            return build_checkpoint(self.engine, reason, self.key, fence)
        except Exception:  # noqa: BLE001 - the transition is committed; the next checkpoint covers it too
            log.exception("writing an audit checkpoint failed (%s)", reason)
            return None

    def daily(self, fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Scheduler job: write a checkpoint when the newest is a day old (or there is none); return 1 if written."""
        if self.key is None:
            return 0
        now = self.engine.clock.now()
        if self._next_daily is None:
            with Session(self.engine.db.engine) as session:
                newest = session.execute(select(col(AuditCheckpoint.created_at)).where(
                    col(AuditCheckpoint.key_id) == key_id(self.key))
                    .order_by(col(AuditCheckpoint.seq).desc()).limit(1)).scalar()
            self._next_daily = datetime.fromisoformat(newest) + DAILY if newest else now
        if now < self._next_daily:
            return 0
        written = self.write("daily", fence)
        self._next_daily = now + DAILY if written else now + timedelta(minutes=5)
        return 1 if written else 0
