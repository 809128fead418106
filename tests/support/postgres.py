"""A PostgreSQL database of the test process's own: created on the server of the test URL, migrated, dropped after.

Each pytest process (the controller, or each xdist worker) gets `<test database>_<worker>_<pid>`, so parallel
workers and parallel test runs never share tables. A database rather than a schema: the scheduler's advisory lock
and its eviction of stale leaders (`pg_terminate_backend`) are scoped to a database, so leader tests in two schemas
of one database would take each other's lock and kill each other's processes. The database named by the test URL
is only connected to, to create and drop these; nothing in it (its `public` schema included) is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from api.schema import upgrade

MAX_NAME = 63  # PostgreSQL's identifier limit


def own_database_name(base_url: str, worker: str) -> str:
    """Return the name of this process's database beside the one the test URL names."""
    suffix = f"_{worker}_{os.getpid()}"
    base = make_url(base_url).database or "vuosikello"
    return (base[: MAX_NAME - len(suffix)] + suffix).lower()


@contextmanager
def own_database(base_url: str, worker: str) -> Iterator[str]:
    """Create this process's database, migrate it to head with Alembic, yield its URL, then drop it."""
    name = own_database_name(base_url, worker)
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            # Only a database of this very name (this pid, this worker) from a run that died is dropped.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            upgrade(url, "head")  # as production builds its schema
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
