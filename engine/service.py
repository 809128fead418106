"""Fire triggers: the unit of work that locks a case, checks it, writes state and event, and runs hooks.

One `UnitOfWork` is one database transaction. Everything a transition causes (child and parent transitions,
timers armed or cancelled, emails queued) is written through it and commits together; side effects registered
with `after_commit` run only once the commit succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from sqlalchemy import Select, bindparam, event, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlmodel import Session

from engine.actors import SYSTEM, Actor
from engine.audit import GENESIS, ON_BEHALF_OF, canonical_json, event_hash
from engine.clock import Clock
from engine.db import Database, WriteTransaction
from engine.errors import CaseNotFound, Conflict, GuardRejected, InvalidTransition, NotPermitted
from engine.payload import validate_payload
from engine.permissions import permitted_by_roles, roles_held
from engine.records import CaseRow, TransitionRecord
from engine.registry import Registry
from engine.statements import CASE, CASE_COLS, ORGANISATION, Cursor, Statement

if TYPE_CHECKING:
    from engine.machine import WorkflowMachine

T = TypeVar("T")


@dataclass
class FireContext:
    """What guards see while a trigger runs."""

    uow: UnitOfWork
    case: CaseRow
    actor: Actor
    payload: dict[str, Any]
    trigger: str
    rejection: str | None = None
    rejection_id: str | None = None
    rejection_params: dict[str, Any] = field(default_factory=dict)

    def refuse(self, detail: str, message_id: str, **params: Any) -> bool:
        """Record why a guard refused (English for logs, a message id for people) and return False."""
        self.rejection = detail
        self.rejection_id = message_id
        self.rejection_params = params
        return False


def actor_roles(uow: UnitOfWork, case: CaseRow, actor: Actor) -> set[str]:
    """Return the roles an actor holds on one case."""
    parent_coordinator = uow.case(case.parent_id).coordinator_id if case.parent_id is not None else None
    return roles_held(actor, case, parent_coordinator)


@dataclass
class UnitOfWork:
    """One write transaction of the engine."""

    db: Database
    registry: Registry
    clock: Clock
    tx: WriteTransaction
    _rows: dict[int, CaseRow] = field(default_factory=dict)
    _after: list[Callable[[], None]] = field(default_factory=list)
    _now: datetime | None = None
    depth: int = 0
    _session: Session | None = None
    _cursor: Cursor | None = None
    _ended: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # what a listener keeps for this transaction (Session.info)
    _ordered: bool = False  # the cursor's kept writes are hooked to go out before the Connection's statements

    @property
    def conn(self) -> Connection:
        """Return an SQLAlchemy Connection inside this transaction, for Core statements."""
        conn = self.tx.connection
        if self._cursor is not None and self._cursor.later and not self._ordered:
            self._order_writes(conn)
        return conn

    def _order_writes(self, conn: Connection) -> None:
        # the cursor's kept writes go out before anything the Connection sends (a Session's flush, a savepoint)
        event.listen(conn, "before_cursor_execute", self.cursor.before)
        self._ordered = True

    @property
    def session(self) -> Session:
        """Return an ORM session inside this transaction (opened on first use; the engine itself needs none)."""
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    @property
    def open_session(self) -> Session | None:
        """Return the ORM session when this unit of work has opened one (None: nothing of the ORM is pending)."""
        return self._session

    @property
    def cursor(self) -> Cursor:
        """Return the transaction's DBAPI cursor for the engine's own compiled statements."""
        if self._cursor is None:
            prefetch = None
            if self.registry.prefetch and self.db.statements.pipelined:
                prefetch = [(key, entry) for key, stmt in self.registry.prefetch.items()
                            if (entry := self._compiled(stmt)) is not None]
            self._cursor = Cursor(self.tx.driver, self.db.statements, prefetch)
        return self._cursor

    def prefetched(self, key: str) -> list[tuple[Any, ...]]:
        """Return the rows of a read declared with `Registry.read_first`, read once per transaction: with the
        transaction's first statement on PostgreSQL, or now."""
        cached: list[tuple[Any, ...]] | None = self.info.get(f"prefetch:{key}")
        if cached is None:
            cursor = self._cursor
            cached = cursor.prefetched.pop(key, None) if cursor is not None and cursor.prefetched else None
            if cached is None:
                cached = self.select(self.registry.prefetch[key])
            self.info[f"prefetch:{key}"] = cached
        return cached

    def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> int:
        """Run a prebuilt Core UPDATE, INSERT or DELETE in this transaction; return how many rows it touched.

        Compiled once per dialect and run on the transaction's cursor, as the engine's own statements are: no ORM
        session and no SQLAlchemy Connection is opened for it (on an approval, opening them and committing through
        them cost more than the statements). The ORM's pending rows are written first, as autoflush would.
        A statement with an IN list to expand, or one run while the cursor is another's (a timer sweep's deferred
        writes), goes through the session's connection as before.
        """
        fast = self._fast(stmt)
        if fast is None:
            return int(self.session.connection().execute(stmt, params or {}).rowcount)
        compiled, defaults = fast
        return self.cursor.write(compiled, {**defaults, **(params or {})})

    def execute_later(self, stmt: Executable, params: dict[str, Any] | None = None) -> None:
        """Run a prebuilt Core UPDATE, INSERT or DELETE whose row count nobody reads.

        On PostgreSQL it is kept and sent with the transaction's next statement, whichever way that goes, or with
        its COMMIT: one round trip for both, in the order written, so what the transaction reads next sees it. A
        refusal of it comes out of that next statement or the commit, and then nothing of the transaction is
        committed. On SQLite it runs at once, as `execute`.
        """
        fast = self._fast(stmt)
        if fast is None:
            self.session.connection().execute(stmt, params or {})
            return
        compiled, defaults = fast
        self.cursor.write_later(compiled, {**defaults, **(params or {})})
        if not self._ordered and self.cursor.later and self.tx.has_connection:
            self._order_writes(self.tx.connection)

    def select(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a prebuilt Core SELECT in this transaction; return its rows (values as the ORM reads them).

        The same as `execute`: compiled once, on the cursor, no session opened.
        """
        fast = self._fast(stmt)
        if fast is None:
            return [tuple(r) for r in self.session.connection().execute(stmt, params or {})]
        compiled, defaults = fast
        return [tuple(r) for r in self.cursor.rows(compiled, {**defaults, **(params or {})})]

    def _fast(self, stmt: Executable) -> tuple[Statement, dict[str, Any]] | None:
        """Return the statement compiled for this dialect with its literal values, or None for the slow path."""
        if self._cursor is not None and type(self._cursor) is not Cursor:
            return None  # someone else's cursor (the sweep's deferred writes): their ordering, their Connection
        entry = self._compiled(stmt)
        if entry is not None and self._session is not None and (
                self._session.new or self._session.dirty or self._session.deleted):
            self._session.flush()
        return entry

    def _compiled(self, stmt: Executable) -> tuple[Statement, dict[str, Any]] | None:
        dialect = self.db.engine.dialect
        key = (dialect.name, id(stmt))
        entry = _COMPILED.get(key)
        if entry is None or entry[0] is not stmt:
            if len(_COMPILED) >= _COMPILED_MAX:
                return None  # statements built per call are not what this is for
            compiled = cast(SQLCompiler, cast(ClauseElement, stmt).compile(dialect=dialect))
            if any(b.expanding for b in compiled.binds.values()):
                entry = (stmt, None)
            else:
                columns = list(stmt.selected_columns) if isinstance(stmt, Select) else []
                defaults = {name: b.effective_value for name, b in compiled.binds.items() if not b.required}
                entry = (stmt, (Statement(stmt, dialect, columns), defaults))
            _COMPILED[key] = entry
        return entry[1]

    def _close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
        if self._session is not None:
            self._session.close()

    def apply(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` inside this transaction, turning the database's refusals into engine errors."""
        try:
            return work(self)
        except (IntegrityError, OperationalError) as exc:
            _raise_translated(exc)

    def attempt(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` under a savepoint: when it raises, what it wrote is undone and the transaction goes on."""
        nested = self.session.begin_nested()
        # the session emits SAVEPOINT lazily, on its next use of the connection; a transition writes through the
        # engine's own cursor first, so without this its state write and event would escape the rollback below
        self.session.connection()
        after = len(self._after)
        try:
            result = self.apply(work)
            nested.commit()  # flushes the ORM's pending rows, so a refusal of theirs is raised here too
        except BaseException:
            if nested.is_active:
                nested.rollback()
            del self._after[after:]
            self._rows = {}  # rows changed by the undone part are read (and locked) again on next use
            self.depth = 0
            raise
        return result

    def commit(self) -> None:
        """Write what is pending and commit; then run the after-commit side effects (once, only on success)."""
        if self._ended:
            raise RuntimeError("this unit of work has already ended")
        # on the hot path of every transition: no helper calls beyond what the commit itself needs
        try:
            if self._session is not None:
                self._session.flush()
            cursor = self._cursor
            if cursor is not None and cursor.later and not self.tx.has_connection:
                cursor.commit()  # PostgreSQL: the kept writes and COMMIT in one round trip
            else:
                if cursor is not None:
                    cursor.flush()
                self.tx.commit()
        except (IntegrityError, OperationalError) as exc:
            self.rollback()
            _raise_translated(exc)
        except BaseException:
            self.rollback()
            raise
        self._ended = True  # what _end does, inline: this runs once per transition
        try:
            self._close()
        finally:
            self.tx.close()
        if self._after:
            after, self._after = self._after, []
            for fn in after:
                fn()

    def rollback(self) -> None:
        """Undo everything this unit of work wrote; its side effects never run."""
        if self._ended:
            return
        try:
            self.tx.rollback()
        finally:
            self._after.clear()
            self._end()

    def _end(self) -> None:
        self._ended = True
        try:
            self._close()
        finally:
            self.tx.close()

    @property
    def now(self) -> datetime:
        """Return the transaction's time (read once, so one transaction has one timestamp)."""
        if self._now is None:
            self._now = self.clock.now()
        return self._now

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run a side effect after (and only if) the transaction commits."""
        self._after.append(fn)

    # -- reading and locking -------------------------------------------------------------------------
    def case(self, case_id: int) -> CaseRow:
        """Return a case locked for this transaction (its parent is locked first, to keep one lock order)."""
        row = self._rows.get(case_id)
        if row is not None:
            return row
        statements = self.db.statements
        for values in self.cursor.rows(statements.case, {"cid": case_id}):
            if values[0] not in self._rows:
                self._rows[values[0]] = CaseRow(*values)
        row = self._rows.get(case_id)
        if row is None:
            raise CaseNotFound(f"no case with id {case_id}", message_id="error.case_not_found",
                               params={"id": case_id})
        if not statements.with_parent and row.parent_id is not None and row.parent_id not in self._rows:
            self.case(row.parent_id)
        return row

    def children(self, parent_id: int) -> list[CaseRow]:
        """Return a case's children, locked, in id order."""
        self.case(parent_id)
        out = []
        for values in self.cursor.rows(self.db.statements.children, {"cid": parent_id}):
            row = self._rows.get(values[0])
            if row is None:
                row = self._rows[values[0]] = CaseRow(*values)
            out.append(row)
        return out

    def child(self, parent_id: int, organisation_key: str) -> CaseRow | None:
        """Return the child of a case that belongs to an organisation (by its key), locked; None when none does.

        On PostgreSQL, when the parent is not read yet, the parent, its own parent and the child come in one
        statement, locked in id order as `case` locks them (a party's decision or signature reads both: one round
        trip less). SQLite has no round trip to save, and its planner would pick the organisation's index.
        """
        if parent_id not in self._rows and self.db.statements.with_parent:
            rows = self.cursor.rows(_family_statement(self.db), {"cid": parent_id, "key": organisation_key})
            for values in rows:
                if values[0] not in self._rows:
                    self._rows[values[0]] = CaseRow(*values)
            parent = self.case(parent_id)  # raises CaseNotFound; on SQLite reads a grandparent as `case` does
            return next((self._rows[v[0]] for v in rows if v[5] == parent.id), None)
        for values in self.cursor.rows(self.db.statements.child, {"cid": parent_id, "key": organisation_key}):
            row = self._rows.get(values[0])
            if row is None:
                row = self._rows[values[0]] = CaseRow(*values)
            return row
        return None

    def child_states(self, parent_id: int) -> list[tuple[int, str, int, str]]:
        """Return (id, workflow, version, state) of a case's children in id order: their progress, nothing more.

        A child read and changed earlier in this transaction is reported as it is now (its row here), not as
        stored before.
        """
        out = []
        for cid, workflow, version, state in self.cursor.rows(self.db.statements.child_states, {"cid": parent_id}):
            row = self._rows.get(cid)
            out.append((cid, workflow, version, state) if row is None
                       else (cid, row.workflow, row.workflow_version, row.state))
        return out

    def set_data(self, case: CaseRow, **changes: Any) -> None:
        """Update keys of a case's data (written with the case's next version)."""
        case.data = {**case.data, **changes}
        self.cursor.write(self.db.statements.data, {"cid": case.id, "data": case.data, "updated_at": self.now})

    # -- creating and firing -------------------------------------------------------------------------
    def create_case(self, workflow: str, *, actor: Actor, title: str = "", parent_id: int | None = None,
                    organisation_id: int | None = None, coordinator_id: int | None = None,
                    deadline: date | None = None, data: dict[str, Any] | None = None,
                    payload: dict[str, Any] | None = None, document_hash: str | None = None) -> CaseRow:
        """Insert a case in its definition's initial state, with its first event."""
        machine = self.registry.machine(workflow)
        defn = machine.definition
        values = dict(workflow=workflow, workflow_version=defn.version, state=defn.initial, version=1,
                      parent_id=parent_id, organisation_id=organisation_id, coordinator_id=coordinator_id,
                      title=title, deadline=deadline, data=data or {}, event_count=0, head_hash=GENESIS,
                      created_at=self.now, updated_at=self.now)
        case_id = self.cursor.insert(self.db.statements.create, dict(values))
        row = CaseRow(id=case_id, **{k: values[k] for k in (
            "workflow", "workflow_version", "state", "version", "parent_id", "organisation_id", "coordinator_id",
            "title", "deadline", "data", "event_count", "head_hash")})  # type: ignore[arg-type]
        self._rows[case_id] = row
        record = self._record(row, "create", "Created", None, defn.initial, actor, payload or {}, document_hash)
        self._notify(record)
        return row

    def fire(self, case_id: int, trigger: str, *, actor: Actor = SYSTEM, payload: dict[str, Any] | None = None,
             expected_version: int | None = None, document_hash: str | None = None,
             strict_payload: bool = True) -> TransitionRecord:
        """Fire a trigger on a case inside this transaction; raise an EngineError when it may not."""
        case = self.case(case_id)
        machine = self.registry.machine(case.workflow, case.workflow_version)
        route = machine.route(case.state, trigger)
        if route is None:
            allowed = self.permitted_triggers(case_id, actor)  # what this actor could do instead, not everyone
            final = machine.definition.is_final(case.state)
            raise InvalidTransition(
                f"trigger {trigger!r} is not allowed in state {case.state!r}; "
                f"allowed: {', '.join(allowed) or ('none (final state)' if final else 'none')}",
                allowed=allowed, state=case.state,
                message_id="error.invalid_transition",
                params={"workflow": case.workflow, "trigger": trigger, "state": case.state, "allowed": allowed},
            )
        if expected_version is not None and expected_version != case.version:
            raise Conflict(f"case {case_id} is at version {case.version}, not {expected_version}; reload and retry",
                           message_id="error.stale_version",
                           params={"version": case.version, "expected": expected_version})
        specs = route.specs
        self._check_roles(case, actor, trigger, route.roles)
        payload = validate_payload(route.payload, payload or {}, strict=strict_payload)
        ctx = FireContext(self, case, actor, payload, trigger)
        dest = machine.fire(case.state, trigger, ctx)
        if dest is None:
            raise GuardRejected(ctx.rejection or f"{trigger!r} refused by its conditions in state {case.state!r}",
                                message_id=ctx.rejection_id or "error.guard_rejected",
                                params={"workflow": case.workflow, "trigger": trigger, "state": case.state,
                                        **ctx.rejection_params})
        spec = next((t for t in specs if (t.dest or case.state) == dest), specs[0])
        return self._transition(case, trigger, spec.event_name, dest, actor, payload, document_hash)

    def may(self, case: CaseRow, trigger: str) -> bool:
        """Tell whether the case's definition lets a trigger fire from its current state (roles and guards aside)."""
        return self.machine_of(case).route(case.state, trigger) is not None

    def permitted_triggers(self, case_id: int, actor: Actor) -> list[str]:
        """Return the triggers this actor may fire on a case now: allowed in its state, a role held, guards pass."""
        case = self.case(case_id)
        machine = self.machine_of(case)
        out = []
        for trigger in permitted_by_roles(machine, case.state, actor_roles(self, case, actor)):
            if machine.would_pass(case.state, trigger, FireContext(self, case, actor, {}, trigger)):
                out.append(trigger)
        return out

    def _check_roles(self, case: CaseRow, actor: Actor, trigger: str, needed: frozenset[str]) -> None:
        parent_coordinator = self.case(case.parent_id).coordinator_id if case.parent_id is not None else None
        if not roles_held(actor, case, parent_coordinator) & needed:
            raise NotPermitted(
                f"{trigger!r} on case {case.id} needs one of the roles {', '.join(sorted(needed))}",
                case_id=case.id, action=trigger, message_id="error.not_permitted",
                params={"workflow": case.workflow, "trigger": trigger},
            )

    def _transition(self, case: CaseRow, trigger: str, event_name: str, dest: str, actor: Actor,
                    payload: dict[str, Any], document_hash: str | None) -> TransitionRecord:
        source = case.state
        seq, digest, event_values = self._seal(case, trigger, event_name, source, dest, actor, payload,
                                               document_hash)
        statements = self.db.statements
        event_id = self.cursor.move(
            statements.transition if dest != source else statements.transition_same_state, {
                "cid": case.id, "old_version": case.version, "state": dest, "version": case.version + 1,
                "updated_at": self.now, "event_count": seq, "head_hash": digest}, event_values)
        if event_id is None:
            raise Conflict(f"case {case.id} was changed by someone else; reload and retry",
                           message_id="error.changed_meanwhile")
        case.state = dest
        case.version += 1
        case.event_count = seq
        case.head_hash = digest
        record = TransitionRecord(case, trigger, event_name, source, dest, actor, payload, event_id, seq, self.now,
                                  document_hash)
        self._notify(record)
        return record

    def _record(self, case: CaseRow, trigger: str, name: str, source: str | None, dest: str, actor: Actor,
                payload: dict[str, Any], document_hash: str | None) -> TransitionRecord:
        """Append an event without a state change (creation, data-only records)."""
        seq, digest, values = self._seal(case, trigger, name, source, dest, actor, payload, document_hash)
        self.cursor.write(self.db.statements.head, {"cid": case.id, "event_count": seq, "head_hash": digest})
        return self._append(case, values, seq, digest, trigger, name, source, dest, actor, payload, document_hash)

    def _seal(self, case: CaseRow, trigger: str, name: str, source: str | None, dest: str, actor: Actor,
              payload: dict[str, Any], document_hash: str | None) -> tuple[int, str, dict[str, Any]]:
        seq = case.event_count + 1
        if actor.on_behalf_of_person_id is not None:
            # whom a substitute acted for is part of what the hash seals, not a side table (engine/audit.py)
            payload = {**payload, ON_BEHALF_OF: {"person_id": actor.on_behalf_of_person_id,
                                                 "delegation_id": actor.delegation_id}}
        payload_json = canonical_json(payload)
        on_behalf = case.organisation_id if (not actor.is_system and case.organisation_id
                                              and actor.organisation_id == case.organisation_id) else None
        digest = event_hash(case_id=case.id, seq=seq, at=self.now, actor_id=actor.person_id,
                            on_behalf_of_id=on_behalf, trigger=trigger, name=name, from_state=source,
                            to_state=dest, payload_json=payload_json, document_hash=document_hash,
                            prev_hash=case.head_hash)
        values = dict(case_id=case.id, seq=seq, at=self.now, actor_id=actor.person_id, on_behalf_of_id=on_behalf,
                      trigger=trigger, name=name, from_state=source, to_state=dest, payload=payload_json,
                      document_hash=document_hash, prev_hash=case.head_hash, hash=digest)
        return seq, digest, values

    def _append(self, case: CaseRow, values: dict[str, Any], seq: int, digest: str, trigger: str, name: str,
                source: str | None, dest: str, actor: Actor, payload: dict[str, Any],
                document_hash: str | None) -> TransitionRecord:
        event_id = self.cursor.insert(self.db.statements.event, values)
        case.event_count = seq
        case.head_hash = digest
        return TransitionRecord(case, trigger, name, source, dest, actor, payload, event_id, seq, self.now,
                                document_hash)

    def _notify(self, record: TransitionRecord) -> None:
        self.depth += 1
        try:
            if self.depth > 20:
                raise RuntimeError("transition cascade deeper than 20: a definition loops")
            for listener in self.registry.scoped_listeners.get(record.case.workflow, ()):
                listener(self, record)
            for listener in self.registry.listeners:
                listener(self, record)
            parent_id = record.case.parent_id
            if parent_id is not None:
                parent = self.case(parent_id)
                react = self.registry.child_listeners.get(parent.workflow)
                if react is not None:
                    react(self, record)
        finally:
            self.depth -= 1

    def machine_of(self, case: CaseRow) -> WorkflowMachine:
        """Return the machine of a case's definition version."""
        return self.registry.machine(case.workflow, case.workflow_version)


_FAMILY: dict[str, Statement] = {}  # by dialect name
# `UnitOfWork.execute` and `select`: (dialect, id of the statement) -> (the statement, compiled or None)
_COMPILED: dict[tuple[str, int], tuple[Executable, tuple[Statement, dict[str, Any]] | None]] = {}
_COMPILED_MAX = 1024


def _family_statement(db: Database) -> Statement:
    """PostgreSQL: a case, its parent and its child by organisation key, locked in id order: one statement."""
    dialect = db.engine.dialect
    stmt = _FAMILY.get(dialect.name)
    if stmt is None:
        cid = bindparam("cid", type_=CASE.c.id.type)
        org = (select(ORGANISATION.c.id)
               .where(ORGANISATION.c.key == bindparam("key", type_=ORGANISATION.c.key.type)).scalar_subquery())
        grandparent = select(CASE.c.parent_id).where(CASE.c.id == cid).scalar_subquery()
        query = (select(*CASE_COLS)
                 .where((CASE.c.id == cid) | (CASE.c.id == grandparent)
                        | ((CASE.c.parent_id == cid) & (CASE.c.organisation_id == org)))
                 .order_by(CASE.c.id).with_for_update())
        stmt = _FAMILY[dialect.name] = Statement(query, dialect, CASE_COLS)
    return stmt


class Engine:
    """The engine's entry point: a database, the definitions and a clock."""

    def __init__(self, db: Database, registry: Registry, clock: Clock) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock

    def begin(self) -> UnitOfWork:
        """Open a unit of work (one write transaction); the caller ends it with `commit` or `rollback`."""
        # A bare pooled connection, not a Session: the engine's own writes go through compiled statements,
        # and a Session (~70 µs to open and commit) joins the transaction only when the work asks for one.
        try:
            tx = WriteTransaction(self.db)
        except OperationalError as exc:
            if _is_retryable(exc):
                raise Conflict("the database was busy with a conflicting change; retry",
                               message_id="error.busy") from exc
            raise
        return UnitOfWork(self.db, self.registry, self.clock, tx)

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` in one transaction; commit, then run the after-commit side effects."""
        uow = self.begin()
        try:
            result = work(uow)
        except (IntegrityError, OperationalError) as exc:
            uow.rollback()
            _raise_translated(exc)
        except BaseException:
            uow.rollback()
            raise
        uow.commit()
        return result

    def fire(self, case_id: int, trigger: str, **kwargs: Any) -> TransitionRecord:
        """Fire one trigger in its own transaction."""
        return self.run(lambda uow: uow.fire(case_id, trigger, **kwargs))


def _is_retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


def _raise_translated(exc: IntegrityError | OperationalError) -> NoReturn:
    """Raise the engine error a database refusal means (a stored-data conflict, a busy database), or it itself."""
    if isinstance(exc, IntegrityError):
        raise Conflict(f"the change conflicts with stored data: {exc.orig}", message_id="error.conflict_stored") \
            from exc
    if _is_retryable(exc):
        raise Conflict("the database was busy with a conflicting change; retry", message_id="error.busy") from exc
    raise exc
