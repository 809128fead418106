"""The scheduler: one per SQLite file, one leader at a time on PostgreSQL, fenced by an epoch."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.models import Timer
from engine.scheduler import Leadership, LostLeadership, Scheduler, SchedulerLocked
from tests.support.builders import create_agreement


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_second_scheduler_on_the_same_sqlite_file_refuses_to_start(ctx) -> None:
    first = Scheduler(ctx.engine, [], interval=3600)
    first.start()
    try:
        with pytest.raises(SchedulerLocked):
            Scheduler(ctx.engine, [], interval=3600).start()
    finally:
        first.shutdown()
    again = Scheduler(ctx.engine, [], interval=3600)
    again.start()  # released at shutdown, so a restart works
    again.shutdown()


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_postgres_leader_election_with_fencing(ctx) -> None:
    a, b = Leadership(ctx.engine), Leadership(ctx.engine)
    assert a.acquire() is True
    assert b.acquire() is False
    epoch_a = a.epoch
    a._conn.invalidate()  # the leader's connection dies (as with kill -9)
    a._conn = None
    # the server ends the dead backend, and with it the lock, a moment after the socket closes
    deadline = time.monotonic() + 10
    while not b.acquire() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.is_leader and b.epoch == (epoch_a or 0) + 1
    with pytest.raises(LostLeadership):
        ctx.engine.run(a.fence)  # a stale leader's work is refused
    b.release()


def test_scheduler_tick_fires_due_timers_once(ctx) -> None:
    fx = create_agreement(ctx, parties=2, deadline=date(2026, 6, 19))
    scheduler = Scheduler(ctx.engine, ctx.scheduler_jobs(), interval=3600)
    scheduler.leadership.acquire()
    try:
        ctx.clock.advance(timedelta(days=200))
        first = scheduler.tick()
        second = scheduler.tick()
    finally:
        scheduler.shutdown()
    assert first > 0 and second == 0
    with Session(ctx.db.engine) as s:
        pending = s.execute(select(Timer).where(Timer.status == "pending", Timer.case_id > fx.id)).scalars().all()
    assert pending == []
