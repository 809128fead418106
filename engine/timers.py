"""Timers: armed when a case enters a state, cancelled when it leaves, fired by a sweep of due rows.

The timer rows are the schedule. A sweep claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL, the write lock on
SQLite), fires them in one transaction and marks them, so a timer fires exactly once however late the sweep runs.
Reminders that fell due together (after downtime) are coalesced to the latest one. A batch runs in one savepoint;
if any timer in it fails, the batch is redone with a savepoint per timer, so one broken timer never stops the others
(and costs nothing while none is broken). A timer cancelled by an earlier timer of its batch (its state was left)
does not fire. The cancels of a batch's transitions run together at its end, in one executemany (on PostgreSQL
in one statement, with the batch's case writes and events: engine/sweep_writes.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ARRAY, Row, any_, bindparam, event, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import SessionTransaction

from engine.actors import SYSTEM
from engine.calendar import deadline_instant, parse_offset, relative_instant, reminder_instant
from engine.definition import TimerSpec
from engine.errors import EngineError
from engine.models import Case, Timer, table_of, timer_pending
from engine.records import CaseRow, TransitionRecord
from engine.service import Engine, UnitOfWork
from engine.sweep_writes import DeferredWrites

log = logging.getLogger("vuosikello.timers")
TIMER = table_of(Timer)
CASE = table_of(Case)
_CASE_COLS = [CASE.c[f.name] for f in dataclasses.fields(CaseRow)]
TimerRow = Row[Any]  # a row of TIMER, read through Core
TimerHandler = Callable[[UnitOfWork, TimerRow, CaseRow], None]
# Built once: constructing a statement costs more than SQLite running it.
_CANCEL = (update(TIMER).where(TIMER.c.case_id == bindparam("b_case"), TIMER.c.status == "pending")
           .values(status="cancelled", note=bindparam("b_note"), fired_at=bindparam("b_at")))
# A cancel deferred to the end of a sweep batch: only the timers armed before the transition that left their state
# (the ones the transition armed itself have its seq), so running it later cancels exactly what it would have then.
_CANCEL_BEFORE = _CANCEL.where(TIMER.c.armed_seq < bindparam("b_seq"))
# What `arm` writes, every other column NULL (id from its sequence); one armed timer goes through the cursor.
_ARM_FIELDS = ("case_id", "state", "armed_seq", "kind", "name", "due_at", "deadline", "offset", "trigger", "roles",
               "template", "dedupe_key", "status", "created_at")
_ARM = insert(TIMER).values({n: bindparam(n, type_=TIMER.c[n].type) for n in _ARM_FIELDS})
_RELABEL = (update(TIMER).where(TIMER.c.case_id == bindparam("b_case"), TIMER.c.status == "pending")
            .values(state=bindparam("b_state")))


def _one_of(column: Any, name: str, postgres: bool) -> Any:
    """`column IN (the list parameter name)`; on PostgreSQL `column = ANY(an array)`: one parameter, one SQL text.

    An expanding IN of a batch's 200 ids is a new statement text of 200 placeholders on every batch: SQLAlchemy
    renders it, and psycopg splits and converts it each time (too long for its cache), 10 ms a batch of 200 on
    PostgreSQL (`cProfile` of 3,000 deadlines: the batch's case lock alone 0.15 of 0.95 s). SQLite gets the IN.
    """
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


# One UPDATE for all the timers of a batch that end alike (fired: nearly all of them), not one per timer: on
# PostgreSQL an executemany of 200 is still 200 statements for the server. By `postgres` (see _one_of).
_MARK = {pg: (update(TIMER).where(_one_of(TIMER.c.id, "b_ids", pg))
              .values(status=bindparam("b_status"), note=bindparam("b_note"), fired_at=bindparam("b_at")))
         for pg in (False, True)}
# The timers of a batch's cases, for coalescing in Python: with the status and due time in the WHERE clause as well,
# SQLite chose the due-time index for it and scanned every pending timer that was due, for each reminder of the batch (a
# correlated EXISTS: 110 ms a batch of 200 with 10,000 due, half the sweep's time).
_OF_CASES = {pg: select(TIMER.c.id, TIMER.c.case_id, TIMER.c.armed_seq, TIMER.c.name, TIMER.c.status,
                        TIMER.c.due_at).where(_one_of(TIMER.c.case_id, "b_cases", pg)) for pg in (False, True)}
# The batch's cases: their parents' ids, then all of them locked in id order (`_lock_cases`)
_PARENTS = {pg: select(CASE.c.parent_id).where(_one_of(CASE.c.id, "b_ids", pg)) for pg in (False, True)}
_LOCK = {pg: select(*_CASE_COLS).where(_one_of(CASE.c.id, "b_ids", pg)).order_by(CASE.c.id) for pg in (False, True)}
_LOCK[True] = _LOCK[True].with_for_update()


class BatchPart(Protocol):
    """Work the timer handlers of a sweep batch put off to the end of its savepoint, to do it once for all of them
    (the emails of a batch's reminders: one recipient read and one insert instead of one of each per reminder)."""

    def mark(self) -> Any:
        """Return where the part stands, for `undo`."""

    def undo(self, mark: Any) -> None:
        """Forget what was added after `mark` (its savepoint was rolled back)."""

    def flush(self, uow: UnitOfWork) -> None:
        """Do what was put off, inside the savepoint that is about to be released."""


P = TypeVar("P", bound=BatchPart)


class _Batch:
    """What the running sweep batch's transitions cancelled: the cases (their later timers in the batch do not
    fire) and the cancels themselves, run as one executemany at the end of the batch instead of one UPDATE each;
    and the parts its handlers put off (`batch_part`)."""

    __slots__ = ("cancelled", "cancels", "parts", "writer")

    def __init__(self, writer: DeferredWrites | None = None) -> None:
        self.cancelled: set[int] = set()
        self.cancels: list[dict[str, Any]] = []
        self.parts: dict[str, BatchPart] = {}
        self.writer = writer  # PostgreSQL: runs the cancels set-based

    def mark(self) -> tuple[set[int], int, dict[str, Any]]:
        """Return where the batch stands, for `undo` after a rolled-back savepoint."""
        return set(self.cancelled), len(self.cancels), {k: p.mark() for k, p in self.parts.items()}

    def undo(self, mark: tuple[set[int], int, dict[str, Any]]) -> None:
        """Forget what was cancelled and put off after `mark` (its savepoint was rolled back)."""
        self.cancelled.intersection_update(mark[0])
        del self.cancels[mark[1]:]
        for key in list(self.parts):
            if key in mark[2]:
                self.parts[key].undo(mark[2][key])
            else:
                del self.parts[key]  # made after the mark: all of it undone

    def flush(self, conn: Connection) -> None:
        """Run the deferred cancels, in the order they were made."""
        if self.cancels:
            if self.writer is not None:
                self.writer.cancel(self.cancels)
            else:
                conn.execute(_CANCEL_BEFORE, self.cancels)
            self.cancels.clear()

    def finish(self, uow: UnitOfWork) -> None:
        """Do everything put off, before the savepoint it belongs to is released: the parts, then the cancels."""
        for part in self.parts.values():
            part.flush(uow)
        self.flush(uow.session.connection())


# The running sweep batch (set by the sweep, filled by `cancel`).
_batch: ContextVar[_Batch | None] = ContextVar("timer_batch", default=None)


def batch_part(name: str, make: Callable[[], P]) -> P | None:
    """Return the running sweep batch's part `name` (made on first use), or None outside a sweep batch.

    A handler adds to it what it would otherwise do at once; the sweep flushes it at the end of the savepoint the
    handler ran in (the batch's, or the timer's own when a failed batch is redone one by one), so a rolled-back
    timer's share is undone with it and a failure while flushing fails the batch and then only its own timer.
    """
    batch = _batch.get()
    if batch is None:
        return None
    part = batch.parts.get(name)
    if part is None:
        part = batch.parts[name] = make()
    return part  # type: ignore[return-value]


def _deadline_of(uow: UnitOfWork, case: CaseRow, spec: TimerSpec) -> date | None:
    if spec.at == "parent_deadline" and case.parent_id is not None:
        return uow.case(case.parent_id).deadline
    if spec.at == "case_data":  # a date the workflow keeps in the case's data (none yet: nothing is armed)
        value = case.data.get(spec.field or "")
        return date.fromisoformat(value[:10]) if value else None
    return case.deadline


def _offsets(uow: UnitOfWork, case: CaseRow, spec: TimerSpec) -> list[str]:
    if spec.kind != "reminder":
        return list(spec.offsets)
    own = case.data.get("reminder_offsets")
    if not own and case.parent_id is not None:
        own = uow.case(case.parent_id).data.get("reminder_offsets")
    return list(own or spec.offsets)


Firing = tuple[datetime, str | None, date | None]


def planned(uow: UnitOfWork, case: CaseRow, spec: TimerSpec, start: datetime) -> list[Firing]:
    """Return (due instant, offset, deadline) for every firing a timer spec plans for a case from `start`."""
    if spec.kind == "deadline" and spec.at == "case_data":
        value = case.data.get(spec.field or "")
        if value and "T" in value:  # an exact instant the workflow computed (an aware ISO 8601 datetime)
            return [(datetime.fromisoformat(value).astimezone(UTC), None, None)]
    return plan(spec, _deadline_of(uow, case, spec), _offsets(uow, case, spec), start)


def plan(spec: TimerSpec, deadline: date | None, offsets: list[str], start: datetime) -> list[Firing]:
    """Return (due instant, offset, deadline) for every firing of a timer spec (pure: used by the simulator too)."""
    if spec.kind == "deadline":
        if spec.at == "relative":
            return [(relative_instant(start, parse_offset(spec.after or "P0D", business=spec.business_days)),
                     spec.after, None)]
        return [(deadline_instant(deadline), None, deadline)] if deadline else []
    if deadline is None:
        return []
    out: list[Firing] = []
    for text in offsets:
        out.append((reminder_instant(deadline, parse_offset(text, business=spec.business_days)), text, deadline))
    if spec.repeat_every and spec.repeat_max:
        every = parse_offset(spec.repeat_every)
        last = max([parse_offset(t).days for t in offsets if parse_offset(t).days > 0] or [0])
        for k in range(1, spec.repeat_max + 1):
            text = f"P{last + k * every.days}D"
            out.append((reminder_instant(deadline, parse_offset(text, business=spec.business_days)), text, deadline))
    return out


def arm(uow: UnitOfWork, case: CaseRow, state: str, seq: int) -> int:
    """Insert the timers a state declares; reminders already in the past are not armed."""
    definition = uow.machine_of(case).definition
    rows = []
    for spec in definition.states[state].timers:
        seen: set[datetime] = set()
        for due, offset, deadline in planned(uow, case, spec, uow.now):
            if spec.kind != "deadline" and (due < uow.now or due in seen):
                continue  # past, or the same moment as another offset (two weekend days moved to one Friday)
            seen.add(due)
            rows.append(dict(case_id=case.id, state=state, armed_seq=seq, kind=spec.kind, name=spec.name, due_at=due,
                             deadline=deadline, offset=offset, trigger=spec.trigger, roles=",".join(spec.to),
                             template=spec.template, dedupe_key=f"{case.id}:{seq}:{spec.name}:{offset or ''}",
                             status="pending", created_at=uow.now))
    if len(rows) == 1:
        uow.execute(_ARM, rows[0])
    elif rows:
        uow.session.execute(_ARM, rows)  # one executemany, the ORM's pending rows flushed first as before
    return len(rows)


def cancel(uow: UnitOfWork, case_id: int, note: str, before_seq: int | None = None) -> None:
    """Cancel a case's pending timers (with `before_seq`: those armed before that event).

    Inside a sweep batch a cancel with `before_seq` is deferred to the batch's end and run with the others in one
    executemany (on SQLite a fired deadline spent a third of its time in its own cancel UPDATE, on PostgreSQL a round
    trip); one without is run at once, after the deferred ones, so their order holds.
    """
    batch = _batch.get()
    if batch is not None:
        batch.cancelled.add(case_id)
        if before_seq is not None:
            batch.cancels.append({"b_case": case_id, "b_note": note, "b_at": uow.now, "b_seq": before_seq})
            return
        batch.flush(uow.session.connection())
    uow.execute_later(_CANCEL, {"b_case": case_id, "b_note": note, "b_at": uow.now})


def on_transition(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: leaving a state cancels its timers, entering one arms its timers.

    Between two states that declare the same timers (a party's `invited` and `approved`: the same reminders and
    the same deadline) the pending timers are what arming would plan again, so they stay, re-labelled with the
    new state; nothing else about the case changed in a transition (a changed deadline re-plans with `rearm`).
    """
    if record.from_state == record.to_state:
        return
    if record.from_state is not None:
        states = uow.machine_of(record.case).definition.states
        left, entered = states.get(record.from_state), states.get(record.to_state)
        if left is not None and entered is not None and left.timers and left.timers == entered.timers:
            uow.execute_later(_RELABEL, {"b_case": record.case.id, "b_state": record.to_state})
            return
        cancel(uow, record.case.id, f"left {record.from_state} ({record.event_name})", before_seq=record.seq)
    arm(uow, record.case, record.to_state, record.seq)


def rearm(uow: UnitOfWork, case: CaseRow, note: str = "rescheduled") -> int:
    """Re-plan a case's timers for its current state (after its deadline or offsets changed)."""
    cancel(uow, case.id, note)
    return arm(uow, case, case.state, case.event_count)


def _savepoint(uow: UnitOfWork) -> SessionTransaction:
    """Begin a savepoint and emit it now.

    The Session emits SAVEPOINT only when it next uses its connection, but a transition writes through the unit of
    work's own DBAPI cursor first: without this the first timer's state write and event came before the savepoint
    and outlived its rollback (the first case of a batch that failed later was left moved, and its redo refused).
    """
    savepoint = uow.session.begin_nested()
    uow.session.connection()
    return savepoint


class TimerSweep:
    """Fire due timers in batches; the handlers for reminders and escalations come from notifications."""

    def __init__(self, engine: Engine, handlers: dict[str, TimerHandler] | None = None, batch: int = 200) -> None:
        self.engine = engine
        self.handlers: dict[str, TimerHandler] = handlers or {}
        self.batch = batch

    def run_due(self, now: datetime | None = None, fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Fire everything due at `now` (default: the engine clock); return how many timers were handled.

        The after-commit effects of the batches (rendering the emails their reminders queued) run once the sweep
        has caught up, not between batches, and one at a time, each only while no timer is due: the sweep only
        fires and queues, so the timers of a burst are not late by the rendering of the mail of the batches before
        them, nor the timers falling due while it renders. A batch that did not commit leaves none.
        """
        total = 0
        later: list[Callable[[], None]] = []
        try:
            while True:
                handled = self.engine.run(lambda uow: self._batch(uow, now or uow.now, fence, later))
                total += handled
                if handled == self.batch:
                    continue
                if not later:
                    return total
                # at least one each time round: progress even while due timers are claimed by someone else
                self._effect(later.pop(0))
                while later and not self._due(now):
                    self._effect(later.pop(0))
                if not later:
                    return total
        finally:
            while later:
                self._effect(later.pop(0))

    @staticmethod
    def _effect(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - as after a commit: the effect's own recovery (a queued row) remains
            log.exception("an after-commit effect of the timer sweep failed")

    def _due(self, now: datetime | None) -> bool:
        """Tell whether a pending timer is due (one probe of ix_timer_pending_due)."""
        at = now or self.engine.clock.now()
        with self.engine.db.read_session() as session:
            return session.execute(select(TIMER.c.id).where(timer_pending(), TIMER.c.due_at <= at)
                                   .limit(1)).first() is not None

    def _batch(self, uow: UnitOfWork, now: datetime, fence: Callable[[UnitOfWork], None] | None,
               later: list[Callable[[], None]] | None = None) -> int:
        if fence is not None:
            fence(uow)
        stmt = (select(TIMER).where(timer_pending(), TIMER.c.due_at <= now)
                .order_by(TIMER.c.due_at, TIMER.c.id).limit(self.batch))
        if not uow.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        conn = uow.session.connection()
        timers = conn.execute(stmt).all()
        if not timers:
            return 0
        self._lock_cases(uow, conn, {t.case_id for t in timers})
        deferred = None
        if not uow.db.is_sqlite:  # SQLite runs in-process: a statement costs no round trip there
            uow.cursor.flush()  # what the unit of work kept goes first
            deferred = DeferredWrites(uow, uow.cursor)
            uow._cursor = deferred
            event.listen(conn, "before_cursor_execute", deferred.before)
        try:
            return self._fire_batch(uow, conn, timers, now, later, deferred)
        finally:
            if deferred is not None:
                event.remove(conn, "before_cursor_execute", deferred.before)
                uow._cursor = deferred.real
                deferred.close()

    def _fire_batch(self, uow: UnitOfWork, conn: Connection, timers: Sequence[TimerRow], now: datetime,
                    later: list[Callable[[], None]] | None, deferred: DeferredWrites | None) -> int:
        superseded = self._superseded(conn, timers, now)
        batch = _Batch(deferred)
        token = _batch.set(batch)
        try:
            outcomes = self._all_at_once(uow, timers, superseded, batch)
            if outcomes is None:
                outcomes = [self._one(uow, t, superseded, batch) for t in timers]
        finally:
            _batch.reset(token)
        alike: dict[tuple[str, str | None], list[int]] = {}
        for t, o in zip(timers, outcomes, strict=True):
            if o is not None:
                alike.setdefault(o, []).append(t.id)
        mark = _MARK[not uow.db.is_sqlite]
        for (status, note), ids in alike.items():
            conn.execute(mark, {"b_ids": ids, "b_status": status, "b_note": note, "b_at": uow.now})
        if deferred is not None:
            deferred.flush()  # nothing may stay behind: the commit does not pass the hook
        if later is not None and uow._after:
            effects, uow._after[:] = list(uow._after), []
            uow.after_commit(lambda: later.extend(effects))  # handed to run_due only if this batch commits
        return len(timers)

    @staticmethod
    def _superseded(conn: Connection, timers: Sequence[TimerRow], now: datetime) -> set[int]:
        """Return the batch's reminders that a later one of the same arming and name, also due by `now`, replaces."""
        reminders = [t for t in timers if t.kind != "deadline"]
        if not reminders:
            return set()
        latest: dict[tuple[int, int, str], datetime] = {}
        of_cases = _OF_CASES[conn.dialect.name != "sqlite"]
        # .all(): one fetch for the rows of the batch's cases (every timer they ever had, ~1,000 a batch of 200),
        # not one per row (cProfile of 10,000 reminders on PostgreSQL: 75,000 fetchone calls, a tenth of the sweep)
        for _id, case_id, armed_seq, name, status, due_at in conn.execute(
                of_cases, {"b_cases": sorted({t.case_id for t in reminders})}).all():
            if status == "pending" and due_at <= now:
                key = (case_id, armed_seq, name)
                if key not in latest or due_at > latest[key]:
                    latest[key] = due_at
        return {t.id for t in reminders if latest.get((t.case_id, t.armed_seq, t.name), t.due_at) > t.due_at}

    @staticmethod
    def _lock_cases(uow: UnitOfWork, conn: Connection, ids: set[int]) -> None:
        """Lock and cache the batch's cases and their parents, in id order (as `uow.case` would).

        Their parents' ids first, then all of them by primary key: PostgreSQL ran `id IN (...) OR id IN (parents)`
        as a filter over every case (20 ms a batch with 20,000 cases, growing with the table), and a union of the
        two as a hash join over a scan of every case; `parent_id IS NOT NULL` read every child case through
        ix_case_parent_id. A case's parent never changes, so reading it before the lock is safe.
        """
        postgres = not uow.db.is_sqlite
        parents = conn.execute(_PARENTS[postgres], {"b_ids": sorted(ids)}).scalars().all()
        wanted = sorted(ids | {p for p in parents if p is not None})
        for row in conn.execute(_LOCK[postgres], {"b_ids": wanted}).all():
            uow._rows.setdefault(row[0], CaseRow(*row))

    def _all_at_once(self, uow: UnitOfWork, timers: Sequence[TimerRow], superseded: set[int],
                     batch: _Batch) -> list[tuple[str, str | None] | None] | None:
        """Fire a batch in one savepoint; None (all undone) if any timer failed, to be redone one by one."""
        after, mark = len(uow._after), batch.mark()
        savepoint = _savepoint(uow)
        try:
            outcomes = [self._fire(uow, t, superseded, batch) for t in timers]
            batch.finish(uow)
            savepoint.commit()
            return outcomes
        except Exception:  # noqa: BLE001 - redone timer by timer, where the failure is recorded
            savepoint.rollback()
            self._undo(uow, after, batch, mark)
            return None

    def _one(self, uow: UnitOfWork, timer: TimerRow, superseded: set[int],
             batch: _Batch) -> tuple[str, str | None] | None:
        """Fire one timer in its own savepoint; return its (status, note), or None if it was cancelled."""
        after, mark = len(uow._after), batch.mark()
        savepoint = _savepoint(uow)
        try:
            outcome = self._fire(uow, timer, superseded, batch)
            batch.finish(uow)  # inside its savepoint: undone with it
            savepoint.commit()
            return outcome
        except EngineError as exc:
            savepoint.rollback()
            self._undo(uow, after, batch, mark)
            return "skipped", str(exc.detail)[:1000]
        except Exception as exc:  # noqa: BLE001 - one broken timer must not stop the others
            savepoint.rollback()
            self._undo(uow, after, batch, mark)
            log.exception("timer %s failed", timer.id)
            return "failed", f"{type(exc).__name__}: {exc}"[:1000]

    @staticmethod
    def _undo(uow: UnitOfWork, after: int, batch: _Batch, mark: tuple[set[int], int, dict[str, Any]]) -> None:
        """Forget what a rolled-back savepoint did: cached case rows, after-commit effects, cancellations."""
        uow._rows.clear()
        del uow._after[after:]
        batch.undo(mark)

    def _fire(self, uow: UnitOfWork, timer: TimerRow, superseded: set[int],
              batch: _Batch) -> tuple[str, str | None] | None:
        if timer.case_id in batch.cancelled:
            return None  # an earlier timer of this batch left the state that armed it: already cancelled
        if timer.id in superseded:
            return "coalesced", "a later reminder for the same deadline fell due as well"
        case = uow.case(timer.case_id)
        if timer.kind == "deadline":
            if timer.trigger:
                uow.fire(case.id, timer.trigger, actor=SYSTEM, payload={}, strict_payload=False)
        else:
            handler = self.handlers.get(timer.kind)
            if handler is None:
                raise RuntimeError(f"no handler for {timer.kind} timers")
            handler(uow, timer, case)
        return "fired", None


def next_due(engine: Engine) -> datetime | None:
    """Return when the next pending timer falls due."""
    with engine.db.read_session() as session:
        return session.execute(select(TIMER.c.due_at).where(timer_pending())
                               .order_by(TIMER.c.due_at).limit(1)).scalar()


