"""PostgreSQL: a timer sweep batch's writes sent together, set-based, instead of one round trip each.

SQLite runs in-process, where a statement costs no round trip, so the sweep (engine/timers.py) writes there as a
request does. On PostgreSQL the batch's case writes and event inserts are kept and sent in order before anything
else reaches the database, as arrays (unnest) where one statement can take them all, and its deferred cancels
likewise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import DBAPIError

from engine.errors import Conflict
from engine.models import Case, Timer, table_of
from engine.service import UnitOfWork
from engine.statements import EVENT, EVENT_FIELDS, Cursor, Statement

TIMER = table_of(Timer)
CASE = table_of(Case)

_EVENT_IDS = "SELECT nextval(pg_get_serial_sequence('event', 'id')) FROM generate_series(1, 256)"
_EVENT_WITH_ID: dict[str, Statement] = {}  # by dialect name
# The cancel with every value a parameter (run on the DBAPI cursor, which knows no statement's own literal values).
_CANCEL_SENT = (update(TIMER).where(TIMER.c.case_id == bindparam("b_case"), TIMER.c.status == bindparam("b_pending"),
                                    TIMER.c.armed_seq < bindparam("b_seq"))
                .values(status=bindparam("b_status"), note=bindparam("b_note"), fired_at=bindparam("b_at")))
_TRANSITION_NAMES = ("cid", "old_version", "state", "version", "event_count", "head_hash", "updated_at")
_CANCEL_NAMES = ("b_case", "b_seq", "b_note", "b_at")


class _SetBased:
    """PostgreSQL: the statements a batch sends once with arrays (unnest) instead of once per row in an executemany.

    An executemany of 200 is still 200 statements, each parsed, planned and run by the server and dumped by psycopg
    (the profile: half of the client's time in psycopg, the server's per-statement work as much as its row work).
    """

    def __init__(self, dialect: Any) -> None:
        # S608 below: built once from the table metadata's names and types; every value is a parameter
        q = dialect.identifier_preparer.quote

        # %b: each array goes in psycopg's binary format. In text format every element is quoted through a
        # regular expression (psycopg's ListDumper): a fifth of a 3,000-deadline sweep's time on PostgreSQL.
        def arrays(cols: Sequence[tuple[str, Any]]) -> str:
            return ", ".join(f"%({n})b::{t.compile(dialect=dialect)}[]" for n, t in cols)

        case_types = [CASE.c.id.type, CASE.c.version.type, *(CASE.c[n].type for n in _TRANSITION_NAMES[2:])]
        self.transition = (
            f"UPDATE {q(CASE.name)} SET " + ", ".join(f"{n} = v.{n}" for n in _TRANSITION_NAMES[2:])  # noqa: S608
            + f" FROM unnest({arrays(list(zip(_TRANSITION_NAMES, case_types, strict=True)))}) AS v("
            + ", ".join(_TRANSITION_NAMES) + f") WHERE {q(CASE.name)}.id = v.cid AND {q(CASE.name)}.version = "
            "v.old_version")
        event_names = ("id", *EVENT_FIELDS)
        self.event_names = event_names
        self.events = (f"INSERT INTO {q(EVENT.name)} ({', '.join(q(n) for n in event_names)}) SELECT * FROM "  # noqa: S608
                       f"unnest({arrays([(n, EVENT.c[n].type) for n in event_names])})")
        cancel_types = [TIMER.c.case_id.type, TIMER.c.armed_seq.type, TIMER.c.note.type, TIMER.c.fired_at.type]
        self.cancel = (
            f"UPDATE {q(TIMER.name)} SET status = %(b_status)s, note = v.note, fired_at = v.at FROM "  # noqa: S608
            f"unnest({arrays(list(zip(_CANCEL_NAMES, cancel_types, strict=True)))}) AS v(case_id, seq, note, at) "
            f"WHERE {q(TIMER.name)}.case_id = v.case_id AND {q(TIMER.name)}.status = %(b_pending)s "
            f"AND {q(TIMER.name)}.armed_seq < v.seq")
        self.cancel_one = Statement(_CANCEL_SENT, dialect)


_SET_BASED: dict[str, _SetBased] = {}  # by dialect name


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {n: [r[n] for r in rows] for n in names}


class DeferredWrites(Cursor):
    """PostgreSQL: a sweep batch's case writes and event inserts, sent as executemany instead of one round trip each.

    The profile of 10,000 deadlines on PostgreSQL: nine tenths of the sweep waited for the two round trips a fired
    deadline makes (the case's state write and its event). Here they are kept until something else is about to
    reach the database (any statement on the transaction's Connection, a read of this cursor, the end of the batch)
    and then sent in order: the case writes as executemany (their rows counted: every transition must have found
    its case at the version it read, as `_transition` checks one by one), then the events, whose ids were taken
    from their sequence beforehand (one query per 256). A savepoint rolled back drops what it had kept; one begun
    sends it first. What the transaction reads therefore always sees what it wrote, as with immediate writes.
    """

    def __init__(self, uow: UnitOfWork, real: Cursor) -> None:
        super().__init__(uow.tx.driver, uow.db.statements)
        self.real = real
        dialect = uow.session.connection().dialect
        stmt = _EVENT_WITH_ID.get(dialect.name)
        if stmt is None:
            stmt = _EVENT_WITH_ID[dialect.name] = Statement(
                insert(EVENT).values({n: bindparam(n, type_=EVENT.c[n].type) for n in ("id", *EVENT_FIELDS)}),
                dialect)
        self.event_insert = stmt
        self.set = _SET_BASED.get(dialect.name) or _SET_BASED.setdefault(dialect.name, _SetBased(dialect))
        self.writes: list[tuple[Statement, Any]] = []
        self.events: list[Any] = []
        self.ids: list[int] = []
        self.transitions = 0

    def rows(self, stmt: Statement, values: dict[str, Any]) -> list[list[Any]]:
        """Send what is kept, then read."""
        self.flush()
        return super().rows(stmt, values)

    def insert(self, stmt: Statement, values: dict[str, Any]) -> int:
        """Keep an event insert (its id taken from the sequence now); send anything else at once."""
        if stmt is not self.sql.event:
            self.flush()
            return super().insert(stmt, values)
        if not self.ids:
            self.cursor.execute(_EVENT_IDS)
            self.ids = [int(r[0]) for r in self.cursor.fetchall()][::-1]
        new_id = self.ids.pop()
        self.events.append(self.event_insert.params({**values, "id": new_id}))
        return new_id

    def move(self, update: Statement, values: dict[str, Any], event: dict[str, Any]) -> int | None:
        """Keep a transition's case write and its event, apart: the batch sends each kind set-based."""
        self.write(update, values)
        return self.insert(self.sql.event, event)

    def write(self, stmt: Statement, values: dict[str, Any]) -> int:
        """Keep a case write; its row count is checked when it is sent."""
        if stmt is self.sql.transition:
            self.transitions += 1
        self.writes.append((stmt, stmt.params(values)))
        return 1

    def flush(self) -> None:
        """Send what is kept, in order: the case writes, then the events (set-based where they allow it)."""
        if not self.writes and not self.events:
            return
        writes, events, transitions = self.writes, self.events, self.transitions
        self.discard()
        moved = 0
        start = 0
        while start < len(writes):
            stmt = writes[start][0]
            end = start
            while end < len(writes) and writes[end][0] is stmt:
                end += 1
            group = [p for _, p in writes[start:end]]
            if stmt is self.sql.transition and len(group) > 1 and len({p["cid"] for p in group}) == len(group):
                self._once(self.set.transition, _columns(group, _TRANSITION_NAMES))  # a case twice: one by one
            else:
                self._many(stmt.sql, group)
            if stmt is self.sql.transition:
                moved += self.cursor.rowcount
            start = end
        if moved != transitions:
            raise Conflict(f"{transitions - moved} of the batch's cases were changed by someone else; retry",
                           message_id="error.changed_meanwhile")
        if len(events) > 1:
            self._once(self.set.events, _columns(events, self.set.event_names))
        elif events:
            self._many(self.event_insert.sql, events)

    def cancel(self, cancels: list[dict[str, Any]]) -> None:
        """Run a batch's deferred cancels after what is kept: those of cases cancelled once in one statement, a case
        cancelled more than once (a parent its children moved) by one statement each, in their order."""
        self.flush()
        fixed = {"b_status": "cancelled", "b_pending": "pending"}
        rows = [self.set.cancel_one.params({**c, **fixed}) for c in cancels]
        times = Counter(r["b_case"] for r in rows)
        once = [r for r in rows if times[r["b_case"]] == 1]
        again = [r for r in rows if times[r["b_case"]] > 1]
        if len(once) > 1:
            self._once(self.set.cancel, {**_columns(once, _CANCEL_NAMES), **fixed})
        else:
            again = once + again
        if again:
            self._many(self.set.cancel_one.sql, again)

    def _once(self, sql: str, params: dict[str, Any]) -> None:
        try:
            self.cursor.execute(sql, params)
        except self.sql.dbapi_error as exc:
            raise DBAPIError.instance(sql, params, exc, self.sql.dbapi_error) from exc

    def discard(self) -> None:
        """Forget what is kept (its savepoint is being rolled back)."""
        self.writes, self.events, self.transitions = [], [], 0

    def _many(self, sql: str, params: list[Any]) -> None:
        try:
            self.cursor.executemany(sql, params)
        except self.sql.dbapi_error as exc:
            raise DBAPIError.instance(sql, params[:1], exc, self.sql.dbapi_error) from exc

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Connection hook: send what is kept before any other statement; drop it before a rollback to savepoint."""
        if statement.startswith("ROLLBACK TO SAVEPOINT"):
            self.discard()
        else:
            self.flush()
