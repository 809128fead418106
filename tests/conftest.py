"""Shared fixtures: one suite, two databases (a SQLite file and the PostgreSQL server), a movable clock.

SQLite files are built with `create_all` (fast; tests/engine/test_migrations.py checks that the migrations build
the same tables); PostgreSQL with the Alembic migrations, as production does, in a database of each test process's
own (tests/support/postgres.py), so `pytest -n` workers never share tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session

from api.context import AppContext, build_context
from api.schema import create_all, metadata
from engine.clock import ManualClock
from engine.db import Database, make_database
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.settings import Settings
from tests.support.postgres import own_database

pytest_plugins = ["tests.support.smtp_fixtures"]

PG_URL = os.environ.get("VUOSIKELLO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 2.3.2026 09:00 Helsinki


def _pg_available() -> str | None:
    try:
        db = make_database(PG_URL)
        with db.engine.connect() as conn:
            conn.execute(text("select 1"))
        db.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """This test process's own PostgreSQL database, built by the migrations once per session and dropped after."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")  # xdist's gw0, gw1, ...
    with own_database(PG_URL, worker) as url:
        db = make_database(url, pool_size=30)
        yield db
        db.dispose()


def _truncate(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata().sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "vuosikello.db"
        db = make_database(f"sqlite:///{path}")
        create_all(db)
        yield db
        db.dispose()
    else:
        db = request.getfixturevalue("pg_database")
        _truncate(db)
        yield db


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test moves it."""
    return ManualClock(START)


@pytest.fixture
def ctx(database: Database, clock: ManualClock) -> AppContext:
    """The service's shared objects on a fresh database with the real organisation register."""
    settings = Settings(environment="test", database_url=database.url, admin_token=None,
                        base_url="http://testserver", scheduler_enabled=False)
    context = build_context(settings, clock=clock, db=database)
    with Session(database.engine) as session:
        import_organisations(session, DEFAULT_ORGANISATIONS, clock.now())
        session.commit()
    return context


def context_for(database: Database, clock: ManualClock, **settings: object) -> AppContext:
    """Build a context on a database with the organisation register loaded."""
    base: dict[str, object] = dict(environment="test", database_url=database.url, admin_token=None,
                                   base_url="http://testserver", scheduler_enabled=False)
    base.update(settings)
    context = build_context(Settings(**base), clock=clock, db=database)  # type: ignore[arg-type]
    with Session(database.engine) as session:
        if session.execute(text("SELECT count(*) FROM organisation")).scalar() == 0:
            import_organisations(session, DEFAULT_ORGANISATIONS, clock.now())
            session.commit()
    return context


@pytest.fixture
def smtp_ctx(database: Database, clock: ManualClock, smtp_server) -> AppContext:  # type: ignore[no-untyped-def]
    """A context whose mail goes to the real aiosmtpd test server."""
    return context_for(database, clock, smtp_host=smtp_server.hostname, smtp_port=smtp_server.port,
                       smtp_timeout=5.0)
