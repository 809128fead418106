"""Alembic environment: runs the shipped migrations against the configured URL."""

from __future__ import annotations

from alembic import context

from api.schema import metadata
from engine.db import make_database

target_metadata = metadata()


def run_migrations_online() -> None:
    """Run migrations with a live connection."""
    url = context.config.get_main_option("sqlalchemy.url") or ""
    db = make_database(url)
    with db.write_engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=db.is_sqlite, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    db.dispose()


run_migrations_online()
