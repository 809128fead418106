"""Everything a running service shares: settings, database, definitions, engine and clock."""

from __future__ import annotations

from dataclasses import dataclass

from engine.clock import Clock, SystemClock
from engine.db import Database, make_database
from engine.registry import Registry
from engine.service import Engine
from engine.settings import Settings
from workflows.registry import build_registry


@dataclass
class AppContext:
    """The service's shared objects, built once per process."""

    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    clock: Clock


def build_context(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> AppContext:
    """Build the shared objects from settings."""
    db = db or make_database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    registry = build_registry()
    clock = clock or SystemClock()
    return AppContext(settings=settings, db=db, registry=registry, engine=Engine(db, registry, clock), clock=clock)
