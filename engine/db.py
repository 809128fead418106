"""Database engines: SQLite (file, WAL, foreign keys, BEGIN IMMEDIATE for writes) or PostgreSQL, one code path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

IMMEDIATE = "vk_write"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so writes can BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit at driver level; BEGIN emitted below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front, so two writers never deadlock on upgrade.
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Database:
    """The read engine and its write-mode twin sharing one pool."""

    url: str
    engine: Engine
    write_engine: Engine

    @property
    def dialect(self) -> str:
        """Return 'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        """Tell whether this is SQLite."""
        return self.dialect == "sqlite"

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Open a session for reads; nothing is committed."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def make_database(url: str, *, busy_timeout_ms: int = 30000, pool_size: int = 10) -> Database:
    """Create the engines for a database URL (sqlite:///path or postgresql+psycopg://...)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_size=pool_size,
            max_overflow=40,
        )
        _configure_sqlite(engine, busy_timeout_ms)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=40, pool_pre_ping=True)
    write_engine = engine.execution_options(**{IMMEDIATE: True})
    return Database(url=url, engine=engine, write_engine=write_engine)
