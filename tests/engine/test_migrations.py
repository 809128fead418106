"""Migrations: `api.schema.upgrade` builds, on an empty SQLite file and an empty PostgreSQL schema, exactly the
tables the models describe (Alembic's autogenerate comparison finds nothing to add, drop or alter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from api.schema import alembic_config, metadata, upgrade
from engine.db import Database, make_database

SCHEMA = "vk_migration_check"


def differences(db: Database) -> list[Any]:
    """Return what Alembic would autogenerate to bring the database to the models."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": db.is_sqlite})
        return list(compare_metadata(context, metadata()))


def check_upgraded(url: str) -> None:
    upgrade(url)
    db = make_database(url)
    try:
        tables = set(inspect(db.engine).get_table_names())
        assert set(metadata().tables) <= tables, sorted(set(metadata().tables) - tables)
        diff = differences(db)
        assert diff == [], "migrations and models differ (regenerate the migration):\n" + "\n".join(map(str, diff))
        with db.engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
        upgrade(url)  # a second run is a no-op
        assert differences(db) == []
    finally:
        db.dispose()


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_upgrade_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    check_upgraded(f"sqlite:///{tmp_path / 'migrated.db'}")


@pytest.fixture
def pg_schema(pg_database: Database) -> Iterator[str]:
    """A URL whose connections live in an empty schema of this test process's database."""
    with pg_database.engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    separator = "&" if "?" in pg_database.url else "?"
    yield f"{pg_database.url}{separator}options=-csearch_path%3D{SCHEMA}"
    with pg_database.engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


@pytest.mark.postgres
def test_upgrade_on_a_fresh_postgres_schema(pg_schema: str) -> None:
    check_upgraded(pg_schema)
    db = make_database(pg_schema)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar_one() == SCHEMA
    finally:
        db.dispose()
