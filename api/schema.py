"""The complete schema, composed here at the top: every layer's tables, and the Alembic migrations that build them.

The engine knows only its own tables; api/ is the one layer that sees them all (engine, workflows, notifications,
the web pages), so the full metadata and the migrations (`api/migrations`, revision ids unchanged) live here.
Real databases are built with `upgrade`; `create_all` is for throwaway SQLite test files, and
tests/engine/test_migrations.py checks that the two agree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

# Imported for their side effect: each module registers its tables in SQLModel.metadata.
import api.web.models  # noqa: F401
import api.web.oidc  # noqa: F401
import engine.links  # noqa: F401
import engine.models  # noqa: F401
import notifications.template_store  # noqa: F401
import notifications.webhooks.models  # noqa: F401
import workflows.models  # noqa: F401
from engine.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def metadata() -> MetaData:
    """Return the metadata of every table of every layer."""
    return SQLModel.metadata


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the shipped migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# "vk_m": the session-level advisory lock that makes replicas starting together migrate one after the other
MIGRATION_LOCK_KEY = 0x76_6B_5F_6D


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to a revision; on PostgreSQL one process at a time (an advisory lock).

    Two replicas started together would otherwise both see an empty `alembic_version` and both create the same
    tables; one fails, or worse, both half-succeed. The second now waits for the first and then finds the schema
    at head. (SQLite: a file has one writer at a time anyway, and a migration there is one transaction.)
    """
    if url.startswith("sqlite"):
        command.upgrade(alembic_config(url), revision)
        return
    lock_engine = create_engine(url, poolclass=NullPool)
    try:
        with lock_engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        lock_engine.dispose()


def create_all(db: Database) -> None:
    """Create every table directly from the models (SQLite test files; the migrations are checked against this)."""
    metadata().create_all(db.engine)
