"""The pending timers' partial index (ix_timer_pending_due) is what the sweep and the next-due probe read.

The planners use a partial index only when the query's own WHERE names its predicate as written: with
`status = ?` bound, SQLite and PostgreSQL's generic plans scan the whole timer table. So every reader goes
through `engine.models.timer_pending()`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from engine.clock import ManualClock
from engine.db import Database
from engine.models import Timer, table_of, timer_pending
from engine.registry import Registry
from engine.service import Engine
from engine.timers import TimerSweep, next_due

TIMER = table_of(Timer)
NOW = datetime(2027, 1, 1, tzinfo=UTC)


def _plan(conn: Connection, db: Database, stmt: Select[tuple[object, ...]]) -> str:
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    if db.is_sqlite:
        return " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: tell the planner a scan is dear
    return " ".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {compiled}")))


def test_sweep_next_due_and_metrics_read_the_partial_index(database: Database) -> None:
    due = select(TIMER).where(timer_pending(), TIMER.c.due_at <= NOW).order_by(TIMER.c.due_at, TIMER.c.id).limit(200)
    first = select(TIMER.c.due_at).where(timer_pending()).order_by(TIMER.c.due_at).limit(1)
    count = select(func.count()).select_from(TIMER).where(timer_pending(), TIMER.c.due_at <= NOW)
    with database.engine.begin() as conn:
        for stmt in (due, first, count):
            assert "ix_timer_pending_due" in _plan(conn, database, stmt), stmt


def test_the_engine_names_the_predicate_as_written(database: Database) -> None:
    """The sweep, its due probe and next_due send `status = 'pending'` in the SQL, never as a parameter.

    (SQLite re-plans with the bound value and would find the index anyway; PostgreSQL's generic plans, which a
    prepared statement gets after five runs, cannot.)
    """
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM timer" in statement and "due_at" in statement:
            sent.append(statement)

    engine = Engine(database, Registry(), ManualClock(NOW))
    for target in (database.engine, database.write_engine):
        event.listen(target, "before_cursor_execute", record)
    try:
        sweep = TimerSweep(engine)
        assert sweep.run_due(NOW) == 0
        assert next_due(engine) is None
    finally:
        for target in (database.engine, database.write_engine):
            event.remove(target, "before_cursor_execute", record)
    assert len(sent) >= 2, sent  # the probe and next_due at least
    for statement in sent:
        assert "status = 'pending'" in statement, statement
