"""Database engines: SQLite (file, WAL, foreign keys, BEGIN IMMEDIATE for writes) or PostgreSQL, one code path."""

from __future__ import annotations

import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlmodel import Session, create_engine

from engine.statements import CaseStatements

IMMEDIATE = "vk_write"


def rowcount(result: Result[Any]) -> int:
    """Return the rows an UPDATE or DELETE matched (`Session.execute` is typed as returning a plain `Result`)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"no row count on a {type(result).__name__}: pass the result of an UPDATE or DELETE")
    return result.rowcount


# Page cache (KiB per connection) and memory map (bytes) for SQLite; 0 keeps SQLite's defaults (2 MB, no map).
# Measured at 100,000 cases (43 MB file) against 1,000, 23,000 transitions on random cases each, by counts that
# do not depend on what else the machine runs (valgrind's instruction count, strace's system calls; the timings
# of `bench.transitions --scale` swing by +-20 % per round on this shared 2-core machine):
#   - the default 2 MB cache: 4.5 % more instructions per transition, and 2.2 more pread() per transition on the
#     committing thread (pages of the case table and the event index evicted and read again from the file);
#   - a 64 MB cache: 1.8 % more instructions, and no more reads on the committing thread than at 1,000 cases.
#     What still grows is the checkpoint thread's copy (below): ~1.8 pages per transition read from the WAL and
#     written to the file, the case's leaf and the event index's leaf, which at 1,000 cases are the same few
#     pages every time.
# The map did not remove those reads (a page written since the last checkpoint is read from the WAL, never the
# map) and is left off. SQLite fills its cache as pages are used: a small database never takes 64 MB.
# docs/benchmarks.md: "Cost per transition at 100,000 cases".
SQLITE_CACHE_KIB = 65_536
SQLITE_MMAP_BYTES = 0

# Checkpoints. By default SQLite copies the WAL back into the database file from inside whichever commit passes
# 1,000 pages, its fsync included, so one request in about 300 pays for the others. A file database here gets a
# background thread instead (`_Checkpointer`) that runs a PASSIVE checkpoint (never waiting for, nor blocking, a
# reader or the writer) every SQLITE_CHECKPOINT_SECONDS when something was committed. Commits then pay neither
# the copy nor the fsync, and a page written many times between two checkpoints is copied once: with 100,000
# cases a transition cost 1.18-1.28x its cost at 1,000 in CPU with the default, 1.03-1.13x with the thread
# (bench.transitions --scale, docs/benchmarks.md). Writers still checkpoint themselves past
# SQLITE_AUTOCHECKPOINT_PAGES (40 MB of WAL) should the thread fall behind, e.g. behind a long-lived reader.
# 0 seconds keeps SQLite's default.
SQLITE_CHECKPOINT_SECONDS = 0.25
SQLITE_AUTOCHECKPOINT_PAGES = 10_000


class _Checkpointer:
    """A daemon thread checkpointing one SQLite file's WAL on its own connection, until stopped."""

    def __init__(self, path: str, interval: float) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(path, interval, self._stop),
                                       name="vuosikello-sqlite-checkpoint", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Let the thread end at its next wake-up."""
        self._stop.set()

    @staticmethod
    def _run(path: str, interval: float, stop: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        seen = None
        try:
            while not stop.wait(interval):
                try:
                    if conn is None:  # mode=rw: never create a file that is not (or no longer) there
                        conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, isolation_level=None,
                                               check_same_thread=False, timeout=0)
                    version = conn.execute("PRAGMA data_version").fetchone()[0]  # changes when others commit
                    if version != seen:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        seen = version
                except sqlite3.Error:  # gone, or busy: the writers' own bound still holds; try again later
                    if conn is not None:
                        conn.close()
                    conn, seen = None, None
        finally:
            if conn is not None:
                conn.close()


# PostgreSQL: which pooled connections are tried before use. SQLAlchemy's pre-ping sends a query on every checkout,
# a round trip of 60 us on this machine: 2 of the ~20 a 25-party approval (decision and signature) makes, for a
# check that almost never finds anything. A connection the server closed (a restart, pg_terminate_backend, an idle
# timeout) has its socket readable while it lies in the pool, the server's FATAL notice or the end of the stream,
# which one non-blocking poll sees; only a connection idle longer than PING_IDLE_SECONDS, which a firewall may have
# dropped without a word, or one whose socket speaks, is pinged. A failed ping makes the pool replace it
# (DisconnectionError from the checkout hook: the pool reconnects and tries again). Measured: 1.7 % more approvals/s
# on PostgreSQL (`bench.ab`, within the noise of 4 rounds); it is one round trip in every transaction and read.
PING_IDLE_SECONDS = 30.0


def _spoke_while_idle(dbapi_conn: Any) -> bool:
    """Tell whether an idle connection's socket has something to read (or hung up): nothing is sent on it."""
    try:
        poller = select.poll()
        poller.register(dbapi_conn, select.POLLIN | select.POLLPRI)  # a descriptor, or anything with fileno()
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 - closed already (psycopg raises its own error): the ping decides
        return True


def ping(dbapi_conn: Any) -> None:
    """One empty statement: raises when the connection is dead."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(";")
    finally:
        cursor.close()


def _configure_postgres(engine: Engine) -> None:
    """Try a pooled connection before use only when it may be dead (see PING_IDLE_SECONDS)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["vk_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("vk_idle_since", None)
        if since is None:  # just connected
            return
        if time.monotonic() - since < PING_IDLE_SECONDS and not _spoke_while_idle(dbapi_conn):
            return
        try:
            ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: the pool replaces the connection
            raise DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, checkpoints_elsewhere: bool = False) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so writes can BEGIN IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit at driver level; BEGIN emitted below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if SQLITE_CACHE_KIB:
            cur.execute(f"PRAGMA cache_size={-int(SQLITE_CACHE_KIB)}")
        if SQLITE_MMAP_BYTES:
            cur.execute(f"PRAGMA mmap_size={int(SQLITE_MMAP_BYTES)}")
        if checkpoints_elsewhere:
            cur.execute(f"PRAGMA wal_autocheckpoint={int(SQLITE_AUTOCHECKPOINT_PAGES)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front, so two writers never deadlock on upgrade.
        driver = conn.connection.driver_connection
        if driver.in_transaction:  # a WriteTransaction began it already; this Connection only joins it
            return
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get(IMMEDIATE, False) else "BEGIN"
        try:  # straight to the driver: exec_driver_sql costs ~10 µs, a sixth of a whole transition
            driver.execute(sql)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


@dataclass
class Database:
    """The read engine and its write-mode twin sharing one pool."""

    url: str
    engine: Engine
    write_engine: Engine
    _statements: CaseStatements | None = field(default=None, init=False, repr=False)
    # SQLite write connections kept checked out between transactions (see WriteTransaction.close)
    _idle_writers: list[Any] = field(default_factory=list, init=False, repr=False)
    _checkpointer: _Checkpointer | None = field(default=None, init=False, repr=False)

    @property
    def statements(self) -> CaseStatements:
        """Return the engine's hot statements compiled for this database's dialect."""
        if self._statements is None:
            self._statements = CaseStatements(self.engine.dialect)
        return self._statements

    @property
    def dialect(self) -> str:
        """Return 'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        """Tell whether this is SQLite."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Open a session for reads; nothing is committed."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection (and stop the SQLite checkpoint thread: writers checkpoint again)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        while self._idle_writers:
            self._idle_writers.pop().close()
        self.engine.dispose()


IDLE_WRITERS = 4


class WriteTransaction:
    """One write transaction on a pooled DBAPI connection; an SQLAlchemy Connection joins it only on demand.

    The engine's own statements run on the DBAPI connection directly: checking out, beginning and committing
    through a bare pool connection costs about half of what an SQLAlchemy Connection does. On SQLite a few
    clean connections also stay checked out between transactions (`Database._idle_writers`), which saves the
    pool's checkout and reset (~50 Python calls, a tenth of a transition); a SQLite connection cannot go
    stale, and only one that ended outside any transaction is kept. Work that needs Core or the ORM gets
    `connection`, an SQLAlchemy Connection over the same DBAPI connection and transaction, which then owns
    the commit, the rollback and the return to the pool.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None
        self._error: type[Exception] = db.statements.dbapi_error
        self._sqlite = not db.statements.with_parent
        fairy = None
        if self._sqlite and db._idle_writers:
            try:
                fairy = db._idle_writers.pop()
            except IndexError:  # another thread took the last one
                fairy = None
        self._fairy = fairy or self._call(db.write_engine.raw_connection)
        self.driver: Any = self._fairy.driver_connection
        if self._sqlite:  # take the write lock up front; PostgreSQL begins with the first statement
            try:
                self._call(self.driver.execute, "BEGIN IMMEDIATE")
            except BaseException:
                self._fairy.close()
                raise

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._error as exc:
            raise DBAPIError.instance(str(args[0]) if args else None, (), exc, self._error) from exc

    @property
    def has_connection(self) -> bool:
        """Tell whether an SQLAlchemy Connection has joined the transaction (it then owns the commit)."""
        return self._conn is not None

    @property
    def connection(self) -> Connection:
        """Return an SQLAlchemy Connection inside this transaction (for Core statements and Sessions)."""
        if self._conn is None:
            conn = Connection(self.db.write_engine, connection=self._fairy)
            conn.begin()  # bookkeeping only: the DBAPI transaction is already open (see _on_begin)
            self._conn = conn
        return self._conn

    def commit(self) -> None:
        """Commit the transaction."""
        if self._conn is not None:
            self._conn.commit()
        else:
            self._call(self.driver.commit)

    def rollback(self) -> None:
        """Roll the transaction back."""
        if self._conn is not None:
            self._conn.rollback()
        else:
            self._call(self.driver.rollback)

    def close(self) -> None:
        """Give the connection back: to the idle writers when it is a clean SQLite one, else to the pool."""
        if self._conn is not None:
            self._conn.close()
        elif self._sqlite and not self.driver.in_transaction and len(self.db._idle_writers) < IDLE_WRITERS:
            self.db._idle_writers.append(self._fairy)
        else:
            self._fairy.close()


def make_database(url: str, *, busy_timeout_ms: int = 30000, pool_size: int = 10) -> Database:
    """Create the engines for a database URL (sqlite:///path or postgresql+psycopg://...)."""
    path: str | None = None
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_size=pool_size,
            max_overflow=40,
        )
        name = engine.url.database
        if SQLITE_CHECKPOINT_SECONDS and name and name != ":memory:" and not name.startswith("file:"):
            path = os.path.abspath(name)
        _configure_sqlite(engine, busy_timeout_ms, checkpoints_elsewhere=path is not None)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=40)
        _configure_postgres(engine)
    write_engine = engine.execution_options(**{IMMEDIATE: True})
    db = Database(url=url, engine=engine, write_engine=write_engine)
    if path is not None:
        db._checkpointer = _Checkpointer(path, SQLITE_CHECKPOINT_SECONDS)
        weakref.finalize(db, db._checkpointer.stop)  # a Database dropped without dispose() stops it too
    return db
