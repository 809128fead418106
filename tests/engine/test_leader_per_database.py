"""Several Vuosikello databases on one PostgreSQL server: each elects its own scheduler leader and fires its own
timers; evicting a stale leader touches only its own database; replicas starting together migrate one at a time.

Each test creates databases of its own beside the test database (`<test db>_<what>_<pid>`) and drops them after.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col

from api.context import AppContext
from api.schema import alembic_config, upgrade
from engine.clock import ManualClock
from engine.db import Database, make_database
from engine.models import Timer
from engine.scheduler import Scheduler
from tests.conftest import PG_URL, START, _pg_available, context_for
from tests.support.builders import make_user
from tests.support.service_process import create_probe_cases, insert_timers, write_probe_definition
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _server() -> None:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required under CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")


@contextmanager
def fresh_databases(*whats: str, migrate: bool = True) -> Iterator[list[str]]:
    """Create empty databases of this test's own (migrated to head unless told not to); yield URLs; drop them."""
    base = make_url(PG_URL)
    names = [f"{(base.database or 'vk')[:30]}_{what}_{os.getpid()}".lower() for what in whats]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))  # only ours, from a dead run
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls = [base.set(database=n).render_as_string(hide_password=False) for n in names]
        try:
            if migrate:
                for url in urls:
                    upgrade(url)
            yield urls
        finally:
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _probe_context(db: Database, clock: ManualClock, tmp_path: Path, label: str) -> tuple[AppContext, int]:
    """A context on a database with one probe case whose deadline timer is due now; return it and the timer id."""
    ctx = context_for(db, clock)
    ctx.registry.load_dir(write_probe_definition(tmp_path / label))
    coordinator = make_user(ctx, roles="coordinator").id
    case_id, _ = create_probe_cases(ctx, coordinators=[coordinator], deadline=START.date() + timedelta(days=30),
                                    count=1)[0]
    insert_timers(ctx, [dict(case_id=case_id, kind="deadline", name=f"probe-{label}", trigger="ping",
                             due_at=clock.now() - timedelta(seconds=1))])
    with Session(db.engine) as s:
        timer_id = s.execute(select(col(Timer.id)).where(col(Timer.name) == f"probe-{label}")).scalar_one()
    return ctx, int(timer_id)


def _status(db: Database, timer_id: int) -> str:
    with Session(db.engine) as s:
        return str(s.execute(select(col(Timer.status)).where(col(Timer.id) == timer_id)).scalar_one())


def test_two_vuosikello_databases_on_one_server_both_fire_their_timers(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with fresh_databases("leader_a", "leader_b") as (url_a, url_b):
        db_a, db_b = make_database(url_a), make_database(url_b)
        try:
            (ctx_a, timer_a), (ctx_b, timer_b) = (_probe_context(db_a, clock, tmp_path, "a"),
                                                  _probe_context(db_b, clock, tmp_path, "b"))
            sched_a = Scheduler(ctx_a.engine, ctx_a.scheduler_jobs(), 0.2)
            sched_b = Scheduler(ctx_b.engine, ctx_b.scheduler_jobs(), 0.2)
            sched_a.start()
            sched_b.start()
            try:
                wait_until(lambda: sched_a.leadership.is_leader and sched_b.leadership.is_leader, within=30,
                           what="each database's scheduler leads its own database")
                wait_until(lambda: _status(db_a, timer_a) == "fired" and _status(db_b, timer_b) == "fired",
                           within=30, what="the due timer of each database fired",
                           seen=lambda: (_status(db_a, timer_a), _status(db_b, timer_b)))
            finally:
                sched_a.shutdown()
                sched_b.shutdown()
        finally:
            db_a.dispose()
            db_b.dispose()


def test_evicting_a_stale_leader_touches_only_its_own_database(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with fresh_databases("evict_a", "evict_b") as (url_a, url_b):
        db_a, db_b = make_database(url_a), make_database(url_b)
        try:
            ctx_a, _ = _probe_context(db_a, clock, tmp_path, "a")
            ctx_b, _ = _probe_context(db_b, clock, tmp_path, "b")
            leader_a = Scheduler(ctx_a.engine, [], 1.0).leadership
            leader_b = Scheduler(ctx_b.engine, [], 1.0).leadership
            follower_a = Scheduler(ctx_a.engine, [], 1.0).leadership
            assert leader_a.acquire() and leader_b.acquire()
            assert not follower_a.acquire()  # A's lock is held: it follows, and evicts nobody (fresh heartbeat)
            assert leader_a.acquire() and leader_b.acquire()
            clock.advance(timedelta(minutes=5))  # both leaders' heartbeats are now stale
            assert not follower_a.acquire()  # it terminates A's stale leader ...
            wait_until(lambda: not leader_a.acquire(), within=10, what="A's stale leader lost its lock connection")
            assert leader_b.acquire(), "B's leader must keep its lock: another database's follower evicted it"
            wait_until(follower_a.acquire, within=10, what="A's follower takes the lead")
            assert leader_b.acquire()
            for leadership in (follower_a, leader_a, leader_b):
                leadership.release()
        finally:
            db_a.dispose()
            db_b.dispose()


def test_replicas_starting_together_migrate_one_at_a_time() -> None:
    with fresh_databases("migrate_race", migrate=False) as (url,):
        barrier = threading.Barrier(3)
        errors: list[BaseException] = []

        def replica() -> None:
            barrier.wait()
            try:
                upgrade(url)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=replica) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        db = make_database(url)
        try:
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
                assert conn.execute(select(func.count()).select_from(text("scheduler_lease"))).scalar_one() == 0
        finally:
            db.dispose()
