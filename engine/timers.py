"""Timers: armed when a case enters a state, cancelled when it leaves, fired by a sweep of due rows.

The timer rows are the schedule. A sweep claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL, the write lock on
SQLite), fires each inside a savepoint of one transaction and marks it, so a timer fires exactly once however late
the sweep runs. Reminders that fell due together (after downtime) are coalesced to the latest one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update

from engine.actors import SYSTEM
from engine.calendar import deadline_instant, parse_offset, relative_instant, reminder_instant
from engine.definition import TimerSpec
from engine.errors import EngineError
from engine.models import Timer
from engine.service import CaseRow, Engine, TransitionRecord, UnitOfWork

log = logging.getLogger("vuosikello.timers")
TIMER = Timer.__table__  # type: ignore[attr-defined]
TimerHandler = Callable[[UnitOfWork, Any, CaseRow], None]


def _deadline_of(uow: UnitOfWork, case: CaseRow, spec: TimerSpec) -> date | None:
    if spec.at == "parent_deadline" and case.parent_id is not None:
        return uow.case(case.parent_id).deadline
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
    out = []
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
    if rows:
        uow.session.execute(insert(TIMER), rows)
    return len(rows)


def cancel(uow: UnitOfWork, case_id: int, note: str) -> None:
    """Cancel a case's pending timers."""
    uow.session.execute(update(TIMER).where(TIMER.c.case_id == case_id, TIMER.c.status == "pending")
                        .values(status="cancelled", note=note, fired_at=uow.now))


def on_transition(uow: UnitOfWork, record: TransitionRecord) -> None:
    """Registry listener: leaving a state cancels its timers, entering one arms its timers."""
    if record.from_state == record.to_state:
        return
    if record.from_state is not None:
        cancel(uow, record.case.id, f"left {record.from_state} ({record.event_name})")
    arm(uow, record.case, record.to_state, record.seq)


def rearm(uow: UnitOfWork, case: CaseRow, note: str = "rescheduled") -> int:
    """Re-plan a case's timers for its current state (after its deadline or offsets changed)."""
    cancel(uow, case.id, note)
    return arm(uow, case, case.state, case.event_count)


class TimerSweep:
    """Fire due timers in batches; the handlers for reminders and escalations come from notifications."""

    def __init__(self, engine: Engine, handlers: dict[str, TimerHandler] | None = None, batch: int = 200) -> None:
        self.engine = engine
        self.handlers: dict[str, TimerHandler] = handlers or {}
        self.batch = batch

    def run_due(self, now: datetime | None = None, fence: Callable[[UnitOfWork], None] | None = None) -> int:
        """Fire everything due at `now` (default: the engine clock); return how many timers were handled."""
        total = 0
        while True:
            handled = self.engine.run(lambda uow: self._batch(uow, now or uow.now, fence))
            total += handled
            if handled < self.batch:
                return total

    def _batch(self, uow: UnitOfWork, now: datetime, fence: Callable[[UnitOfWork], None] | None) -> int:
        if fence is not None:
            fence(uow)
        stmt = (select(TIMER).where(TIMER.c.status == "pending", TIMER.c.due_at <= now)
                .order_by(TIMER.c.due_at, TIMER.c.id).limit(self.batch))
        if not uow.db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        timers = uow.session.execute(stmt).all()
        for timer in timers:
            self._one(uow, timer, now)
        return len(timers)

    def _one(self, uow: UnitOfWork, timer: Any, now: datetime) -> None:
        status, note = "fired", None
        savepoint = uow.session.begin_nested()
        try:
            if self._superseded(uow, timer, now):
                status, note = "coalesced", "a later reminder for the same deadline fell due as well"
            else:
                case = uow.case(timer.case_id)
                if timer.kind == "deadline":
                    if timer.trigger:
                        uow.fire(case.id, timer.trigger, actor=SYSTEM, payload={}, strict_payload=False)
                else:
                    handler = self.handlers.get(timer.kind)
                    if handler is None:
                        raise RuntimeError(f"no handler for {timer.kind} timers")
                    handler(uow, timer, case)
            savepoint.commit()
        except EngineError as exc:
            savepoint.rollback()
            uow._rows.clear()
            status, note = "skipped", str(exc.detail)[:1000]
        except Exception as exc:  # noqa: BLE001 - one broken timer must not stop the others
            savepoint.rollback()
            uow._rows.clear()
            log.exception("timer %s failed", timer.id)
            status, note = "failed", f"{type(exc).__name__}: {exc}"[:1000]
        uow.session.execute(update(TIMER).where(TIMER.c.id == timer.id)
                            .values(status=status, note=note, fired_at=uow.now))

    @staticmethod
    def _superseded(uow: UnitOfWork, timer: Any, now: datetime) -> bool:
        if timer.kind == "deadline":
            return False
        later = uow.session.execute(select(TIMER.c.id).where(and_(
            TIMER.c.case_id == timer.case_id, TIMER.c.armed_seq == timer.armed_seq, TIMER.c.name == timer.name,
            TIMER.c.status == "pending", TIMER.c.due_at <= now, TIMER.c.due_at > timer.due_at)).limit(1)).first()
        return later is not None


def next_due(engine: Engine) -> datetime | None:
    """Return when the next pending timer falls due."""
    with engine.db.read_session() as session:
        return session.execute(select(TIMER.c.due_at).where(TIMER.c.status == "pending")
                               .order_by(TIMER.c.due_at).limit(1)).scalar()


