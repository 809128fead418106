"""The engine's hot SQL on cases and events: compiled once per dialect, run on the transaction's DBAPI cursor.

SQLAlchemy builds and compiles each statement from the table metadata once, so quoting, placeholders and
`FOR UPDATE` follow the dialect. Running it then skips statement construction, cache keys and result wrapping,
which cost about 25 µs a statement: eight times SQLite's own work for a primary-key read. Values pass through the
columns' own bind and result processors, so what is written and read is exactly what the ORM writes and reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ColumnElement

from engine.models import Case, Event, Organisation, table_of

CASE = table_of(Case)
EVENT = table_of(Event)
ORGANISATION = table_of(Organisation)
CASE_FIELDS = ("id", "workflow", "workflow_version", "state", "version", "parent_id", "organisation_id",
               "coordinator_id", "title", "deadline", "data", "event_count", "head_hash")
CASE_COLS = [CASE.c[n] for n in CASE_FIELDS]
NEW_CASE_FIELDS = (*CASE_FIELDS[1:], "created_at", "updated_at")
EVENT_FIELDS = ("case_id", "seq", "at", "actor_id", "on_behalf_of_id", "trigger", "name", "from_state", "to_state",
                "payload", "document_hash", "prev_hash", "hash")

Processor = Callable[[Any], Any]
_IDLE = 0  # libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE): no transaction begun on the connection


def _param(column: Any, name: str | None = None) -> Any:
    return bindparam(name or column.name, type_=column.type)


class Statement:
    """One compiled statement with its parameter order and type processors."""

    __slots__ = ("sql", "names", "order", "binds", "results", "returns_id")

    def __init__(self, stmt: Any, dialect: Dialect, columns: Sequence[ColumnElement[Any]] = (),
                 *, returns_id: bool = False) -> None:
        # SQLite hands out the new rowid for free (cursor.lastrowid); RETURNING costs it a result row.
        self.returns_id = returns_id and dialect.name != "sqlite"
        compiled = (stmt.returning(stmt.table.c.id) if self.returns_id else stmt).compile(dialect=dialect)
        self.sql = compiled.string
        self.binds: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binds[name] = proc
        self.names: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.order = [(n, self.binds.get(n)) for n in self.names or ()]
        self.results: list[tuple[int, Processor]] = []
        for i, col in enumerate(columns):
            proc = col.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc is not None:
                self.results.append((i, proc))

    def params(self, values: dict[str, Any]) -> Any:
        """Return the DBAPI parameters for named values."""
        if self.names is not None:
            return tuple([values[n] if proc is None else proc(values[n]) for n, proc in self.order])
        for name, proc in self.binds.items():
            values[name] = proc(values[name])
        return values

    def row(self, raw: Sequence[Any]) -> list[Any]:
        """Convert one result row to Python values."""
        out = list(raw)
        for i, proc in self.results:
            out[i] = proc(out[i])
        return out


class CaseStatements:
    """The statements one fired trigger runs, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        lock = dialect.name != "sqlite"  # SQLite holds the write lock on the whole file from BEGIN IMMEDIATE
        cid = bindparam("cid", type_=CASE.c.id.type)
        # PostgreSQL locks a case's parent before the case, in one statement, to keep one lock order. SQLite
        # has no row locks to order: it reads the case alone (a plain primary-key read) and then its parent.
        self.with_parent = lock
        case = select(*CASE_COLS).where(CASE.c.id == cid)
        if lock:
            parent_of = select(CASE.c.parent_id).where(CASE.c.id == cid).scalar_subquery()
            case = select(*CASE_COLS).where((CASE.c.id == cid) | (CASE.c.id == parent_of)).order_by(CASE.c.id)
        children = select(*CASE_COLS).where(CASE.c.parent_id == cid).order_by(CASE.c.id)
        # one child of a parent, by its organisation's key (a party's approval case): one row, not all siblings
        child = (select(*CASE_COLS).select_from(CASE.join(ORGANISATION, ORGANISATION.c.id == CASE.c.organisation_id))
                 .where(CASE.c.parent_id == cid, ORGANISATION.c.key == bindparam("key", type_=ORGANISATION.c.key.type))
                 .order_by(CASE.c.id))
        if lock:
            case, children, child = case.with_for_update(), children.with_for_update(), child.with_for_update(of=CASE)
        # what a parent needs to know of its children's progress: their states, no data decoded, no lock taken
        # (the parent's lock, taken first by every child's transition, already orders them)
        state_cols = [CASE.c.id, CASE.c.workflow, CASE.c.workflow_version, CASE.c.state]
        self.child_states = Statement(select(*state_cols).where(CASE.c.parent_id == cid).order_by(CASE.c.id),
                                      dialect, state_cols)
        self.case = Statement(case, dialect, CASE_COLS)
        self.children = Statement(children, dialect, CASE_COLS)
        self.child = Statement(child, dialect, CASE_COLS)
        # A transition's write; back to the same state, without `state`: SQLite rewrites the entry of every index
        # whose column the UPDATE sets, changed or not, so setting `state` to what it was dirties a page of
        # ix_case_workflow_state on each commit (2 WAL pages against 1 for the case alone; at 100,000 cases a
        # different page each time, copied again by the checkpoint). PostgreSQL compares the values (a HOT update
        # either way): one statement there.
        moved = update(CASE).where(CASE.c.id == cid, CASE.c.version == _param(CASE.c.version, "old_version"))
        counted = {n: _param(CASE.c[n]) for n in ("version", "updated_at", "event_count", "head_hash")}
        self.transition = Statement(moved.values(state=_param(CASE.c.state), **counted), dialect)
        self.transition_same_state = (self.transition if dialect.name != "sqlite"
                                      else Statement(moved.values(**counted), dialect))
        self.create = Statement(insert(CASE).values({n: _param(CASE.c[n]) for n in NEW_CASE_FIELDS}), dialect,
                                returns_id=True)
        self.data = Statement(
            update(CASE).where(CASE.c.id == cid)
            .values(data=_param(CASE.c.data), updated_at=_param(CASE.c.updated_at)),
            dialect)
        self.head = Statement(
            update(CASE).where(CASE.c.id == cid)
            .values(event_count=_param(CASE.c.event_count), head_hash=_param(CASE.c.head_hash)),
            dialect)
        self.event = Statement(insert(EVENT).values({n: _param(EVENT.c[n]) for n in EVENT_FIELDS}), dialect,
                               returns_id=True)
        # PostgreSQL: the transition's case write and its event in one statement, one round trip instead of two
        # (the event is inserted only when the UPDATE found the case at the version read, and its id comes back;
        # no row back is the same refusal as an UPDATE that touched none). SQLite, in-process, has no DML in WITH.
        self.moved_event: Statement | None = None
        if lock:
            moved_cte = moved.values(state=_param(CASE.c.state), **counted).returning(CASE.c.id).cte("moved")
            rest = select(moved_cte.c.id, *[_param(EVENT.c[n]) for n in EVENT_FIELDS[1:]]).select_from(moved_cte)
            self.moved_event = Statement(insert(EVENT).from_select(list(EVENT_FIELDS), rest).add_cte(moved_cte),
                                         dialect, returns_id=True)
        # PostgreSQL through psycopg: statements may be sent together in pipeline mode (engine.statements.Cursor)
        self.pipelined = lock and dialect.driver == "psycopg"


class Cursor:
    """The DBAPI cursor of one transaction's connection; DBAPI errors come out as SQLAlchemy's."""

    def __init__(self, driver_connection: Any, statements: CaseStatements,
                 prefetch: Sequence[tuple[str, tuple[Statement, dict[str, Any]]]] | None = None) -> None:
        self.driver = driver_connection
        self.cursor = driver_connection.cursor()
        self.sql = statements
        self.later: list[tuple[str, Any]] = []  # PostgreSQL: writes nobody reads the result of, not yet sent
        self._later_cursor: Any = None
        self.prefetch = prefetch  # PostgreSQL: reads sent with the transaction's first statement
        self.prefetched: dict[str, list[tuple[Any, ...]]] = {}

    def _execute(self, stmt: Statement, values: dict[str, Any]) -> Any:
        params = stmt.params(values)
        try:
            if self.later or (self.prefetch and self.driver.info.transaction_status == _IDLE):
                # the writes kept, this statement and (the transaction's first) the declared first reads in one
                # round trip; the results are read when the pipeline ends. (psycopg waits for a BEGIN's answer
                # before anything else, in pipeline mode too: that round trip stays.)
                reads = []
                with self.driver.pipeline():
                    self._send_later()
                    self.cursor.execute(stmt.sql, params)
                    if self.prefetch:
                        for key, (read, defaults) in self.prefetch:
                            cursor = self.driver.cursor()
                            cursor.execute(read.sql, read.params(dict(defaults)))
                            reads.append((key, read, cursor))
                        self.prefetch = None
                for key, read, cursor in reads:
                    self.prefetched[key] = [tuple(read.row(r)) for r in cursor.fetchall()]
                    cursor.close()
            else:
                self.cursor.execute(stmt.sql, params)
        except self.sql.dbapi_error as exc:
            raise DBAPIError.instance(stmt.sql, params, exc, self.sql.dbapi_error) from exc
        return self.cursor

    def write_later(self, stmt: Statement, values: dict[str, Any]) -> None:
        """A write whose row count nobody reads: on PostgreSQL kept and sent with the transaction's next statement
        or its COMMIT, in order (`flush`); on SQLite, in-process, at once."""
        if self.sql.pipelined:
            self.later.append((stmt.sql, stmt.params(values)))
        else:
            self.write(stmt, values)

    def _send_later(self) -> None:
        if self.later:
            later, self.later = self.later, []
            if self._later_cursor is None:
                self._later_cursor = self.driver.cursor()
            for sql, params in later:
                self._later_cursor.execute(sql, params)

    def flush(self) -> None:
        """Send the writes kept (before a statement of the transaction's SQLAlchemy Connection, or a savepoint)."""
        if self.later:
            sql = self.later[0][0]
            try:
                with self.driver.pipeline():
                    self._send_later()
            except self.sql.dbapi_error as exc:
                raise DBAPIError.instance(sql, (), exc, self.sql.dbapi_error) from exc

    def commit(self) -> None:
        """Commit on the DBAPI connection: on PostgreSQL with the writes kept, in one round trip. A write refused
        there aborts the pipeline before its COMMIT: nothing of the transaction is committed."""
        if not self.later:
            self.driver.commit()
            return
        sql = self.later[0][0]
        try:
            with self.driver.pipeline():
                self._send_later()
                # as a statement: Connection.commit() in pipeline mode waits for its answer, and the pipeline's
                # end then makes a second round trip
                self._later_cursor.execute("COMMIT")
        except self.sql.dbapi_error as exc:
            raise DBAPIError.instance(sql, (), exc, self.sql.dbapi_error) from exc

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Connection hook (`before_cursor_execute`): send the writes kept before any other statement."""
        self.flush()

    def move(self, update: Statement, values: dict[str, Any], event: dict[str, Any]) -> int | None:
        """A transition's case write (`values`, with its version check) and its event; return the event's id, or None
        when the case was not at the version read (then nothing is written)."""
        combined = self.sql.moved_event
        if combined is None:
            if self.write(update, values) != 1:
                return None
            return self.insert(self.sql.event, event)
        row = self._execute(combined, {**event, **values}).fetchone()
        return None if row is None else int(row[0])

    def rows(self, stmt: Statement, values: dict[str, Any]) -> list[list[Any]]:
        """Run a query; return its converted rows."""
        return [stmt.row(r) for r in self._execute(stmt, values).fetchall()]

    def insert(self, stmt: Statement, values: dict[str, Any]) -> int:
        """Run an INSERT; return the new row's id."""
        cursor = self._execute(stmt, values)
        new_id: int = cursor.fetchone()[0] if stmt.returns_id else cursor.lastrowid
        return new_id

    def write(self, stmt: Statement, values: dict[str, Any]) -> int:
        """Run an UPDATE; return how many rows it touched."""
        count: int = self._execute(stmt, values).rowcount
        return count

    def close(self) -> None:
        """Release the cursor; writes kept and not sent are dropped (the transaction was rolled back)."""
        self.later = []
        self.cursor.close()
        if self._later_cursor is not None:
            self._later_cursor.close()
