"""PostgreSQL's pooled connections: tried before use only when they may be dead, replaced when they are.

The real server: a connection's backend is terminated (as a restart or an administrator does) while it lies in
the pool, and the next checkout must hand out a working connection, not fail a request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from engine import db as engine_db
from engine.db import Database, make_database
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def pool_of_one(pg_database: Database) -> Iterator[Database]:
    """A Database of its own over the test database with one pooled connection, so each checkout takes it."""
    db = make_database(pg_database.url, pool_size=1)
    yield db
    db.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the checkout's pings (the real ping still runs)."""
    seen: list[int] = []
    real = engine_db.ping

    def counted(dbapi_conn: object) -> None:
        seen.append(1)
        real(dbapi_conn)

    monkeypatch.setattr(engine_db, "ping", counted)
    return seen


def _backend(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _pooled_socket(db: Database) -> int:
    """The file descriptor of the pool's one connection (checked out and back in: it stays the pool's)."""
    with db.engine.connect() as conn:
        return int(conn.connection.dbapi_connection.fileno())  # type: ignore[union-attr]


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_round_trip(pool_of_one, pings) -> None:
    first = _backend(pool_of_one)
    assert [_backend(pool_of_one) for _ in range(5)] == [first] * 5  # the same pooled connection each time
    assert pings == []


def test_a_connection_whose_backend_was_terminated_is_replaced_before_use(pool_of_one, pg_database, pings) -> None:
    gone = _backend(pool_of_one)
    socket = _pooled_socket(pool_of_one)
    with pg_database.engine.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": gone}).scalar_one() is True

        def ended() -> bool:
            return admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                 {"pid": gone}).scalar_one() == 0
        wait_until(ended, within=10, poll=0.02, what=f"backend {gone} ended")
    # the server's notice reaches the socket a moment after the backend has gone from pg_stat_activity (on a loaded
    # machine, later than the next checkout here); a request in that moment would fail as it would with a ping
    wait_until(lambda: engine_db._spoke_while_idle(socket), within=10, poll=0.01,
               what=f"the pooled connection of backend {gone} readable")
    replaced = _backend(pool_of_one)  # no OperationalError: the checkout saw the socket speak and reconnected
    assert replaced != gone
    assert pings == [1]  # the dead one was pinged (and failed); its replacement, new, was not


def test_a_connection_idle_past_the_limit_is_pinged_first(pool_of_one, pings, monkeypatch) -> None:
    first = _backend(pool_of_one)
    monkeypatch.setattr(engine_db, "PING_IDLE_SECONDS", 0.0)  # every pooled connection has been idle too long
    assert _backend(pool_of_one) == first  # alive: kept
    assert _backend(pool_of_one) == first
    assert pings == [1, 1]
