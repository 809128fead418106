"""Create or upgrade the schema: Alembic migrations for real databases, create_all for throwaway test files."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlmodel import SQLModel

from engine.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


# Every module that defines tables. Named, not imported, here: the web layer's tables (sessions, substitutes)
# live in api/, which the engine must not import; Alembic and the tests still need the complete metadata.
MODEL_MODULES = ("engine.models", "engine.links", "notifications.template_store", "workflows.models", "api.web.models")


def all_models() -> None:
    """Import every module that defines tables, so the metadata is complete."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the shipped migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to a revision."""
    command.upgrade(alembic_config(url), revision)


def create_all(db: Database) -> None:
    """Create every table directly from the models (tests; the migrations are checked against this)."""
    all_models()
    SQLModel.metadata.create_all(db.engine)
