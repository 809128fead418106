"""Engine tables: organisations, people, API tokens, cases, the hash-chained event log and access denials."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Table, UniqueConstraint, inspect, literal_column, text
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as naive UTC; hand back aware UTC on both databases."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def table_of(model: type[SQLModel]) -> Table:
    """Return a table model's Core `Table` (SQLModel sets `__table__` but does not declare it to type checkers)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    """Return a Column of UTCDateTime."""
    return Column(UTCDateTime(), nullable=nullable, index=index)


ORG_KINDS = ("municipality", "region", "regional_council", "wellbeing_county", "association", "ministry", "other")
LANGUAGES = ("fi", "sv", "en")
ROLES = ("signatory", "coordinator", "admin")


class Organisation(SQLModel, table=True):
    """A public body that can be a party; named by `kind:code`."""

    __tablename__ = "organisation"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=80)
    kind: str = Field(index=True, max_length=40)
    code: str = Field(max_length=40)
    name_fi: str = Field(max_length=200)
    name_sv: str | None = Field(default=None, max_length=200)
    region_code: str | None = Field(default=None, index=True, max_length=10)
    wellbeing_county_code: str | None = Field(default=None, max_length=10)
    active: bool = True
    updated_at: datetime = Field(sa_column=utc_column())


class Person(SQLModel, table=True):
    """A user: signatory, coordinator or administrator of one organisation."""

    __tablename__ = "person"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(unique=True, index=True, max_length=320)
    language: str = Field(default="fi", max_length=2)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    roles: str = Field(default="", max_length=200)  # comma-separated subset of ROLES
    title: str | None = Field(default=None, max_length=200)
    active: bool = True
    digest: bool = False
    password_hash: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=utc_column())

    @property
    def role_set(self) -> frozenset[str]:
        """Return the person's roles as a set."""
        return frozenset(r for r in self.roles.split(",") if r)


class ApiToken(SQLModel, table=True):
    """A personal API token, stored only as its SHA-256."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=utc_column())
    last_used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Case(SQLModel, table=True):
    """One running instance of a workflow; its state lives here, never in memory."""

    __tablename__ = "case"
    __table_args__ = (Index("ix_case_workflow_state", "workflow", "state"),)
    id: int | None = Field(default=None, primary_key=True)
    workflow: str = Field(max_length=80)
    workflow_version: int
    state: str = Field(max_length=80)
    version: int = 1
    parent_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    coordinator_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    title: str = Field(default="", max_length=500)
    deadline: date | None = Field(default=None, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    event_count: int = 0
    head_hash: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())


class Event(SQLModel, table=True):
    """An append-only record of one transition, chained to the case's previous event by hash."""

    __tablename__ = "event"
    # (case_id, seq) is unique, and that index also serves every look-up by case_id: a second index on case_id
    # alone only cost a random insert per event (migration 0014 dropped it; docs/benchmarks.md, 100,000 cases).
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_event_case_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    seq: int
    at: datetime = Field(sa_column=utc_column())
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    on_behalf_of_id: int | None = Field(default=None, foreign_key="organisation.id")
    trigger: str = Field(max_length=80)
    name: str = Field(max_length=80)
    from_state: str | None = Field(default=None, max_length=80)
    to_state: str = Field(max_length=80)
    payload: str = Field(default="{}")  # canonical JSON, exactly what was hashed
    document_hash: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AccessDenial(SQLModel, table=True):
    """A refused attempt, kept for the administrators (written outside the refused transaction)."""

    __tablename__ = "access_denial"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    case_id: int | None = Field(default=None)
    action: str = Field(max_length=200)
    reason: str = Field(max_length=500)


class Timer(SQLModel, table=True):
    """A scheduled deadline, reminder or escalation; the row is the schedule."""

    __tablename__ = "timer"
    __table_args__ = (
        # Only the pending timers, by due time: what the sweep and the next-due probe read. A timer that fires or
        # is cancelled leaves the index instead of moving inside it (an approval cancels 8 reminders: 8 entries
        # deleted and 8 inserted elsewhere in a (status, due_at) index, 13 of the signature's 22 WAL frames).
        # Queries name it through `timer_pending()`: the planners match a partial index only on the literal.
        Index("ix_timer_pending_due", "due_at", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        UniqueConstraint("dedupe_key", name="uq_timer_dedupe"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    state: str = Field(max_length=80)  # the state that armed it; leaving it cancels the timer
    armed_seq: int  # the event that entered that state
    kind: str = Field(max_length=20)  # deadline | reminder | escalation | cycle
    name: str = Field(max_length=80)
    due_at: datetime = Field(sa_column=utc_column())
    deadline: date | None = None
    offset: str | None = Field(default=None, max_length=40)
    trigger: str | None = Field(default=None, max_length=80)
    roles: str = Field(default="", max_length=200)
    template: str | None = Field(default=None, max_length=120)
    dedupe_key: str = Field(max_length=300)
    status: str = Field(default="pending", max_length=20)  # pending | fired | cancelled | coalesced | skipped | failed
    note: str | None = Field(default=None, max_length=1000)
    fired_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(sa_column=utc_column())


def timer_pending() -> ColumnElement[bool]:
    """Return `timer.status = 'pending'` with the value written in the SQL, as ix_timer_pending_due's predicate is.

    A bound parameter (`Timer.status == "pending"`) would leave SQLite and PostgreSQL's generic plans unable to
    prove the query is within the partial index: a scan of every timer ever armed.
    """
    return table_of(Timer).c.status == literal_column("'pending'")


class OutboxMessage(SQLModel, table=True):
    """One email, rendered and queued in the transaction that caused it; sent after the commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    timer_id: int | None = Field(default=None, foreign_key="timer.id")
    template: str = Field(max_length=120)
    language: str = Field(default="fi", max_length=2)
    to_address: str = Field(max_length=320)
    cc: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(max_length=500)
    text: str
    html: str
    ics: str | None = None
    message_id: str = Field(max_length=200)
    list_id: str | None = Field(default=None, max_length=200)
    dedupe_key: str = Field(max_length=300)
    # pending|sending|sent|captured|failed|dead|held|digested, or queued: written in its transition's transaction
    # with `render_context` (what the template is given, as it was then) and rendered by the mail job on delivery
    status: str = Field(default="pending", max_length=20)
    render_context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_error: str | None = Field(default=None, max_length=2000)
    refused: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class SchedulerLease(SQLModel, table=True):
    """Who runs the scheduler: one row per name, with a fencing epoch bumped at every takeover."""

    __tablename__ = "scheduler_lease"
    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=200)
    epoch: int = 0
    heartbeat_at: datetime = Field(sa_column=utc_column())


class StoredDefinition(SQLModel, table=True):
    """A workflow definition version written by an administrator (shipped versions live in workflows/)."""

    __tablename__ = "workflow_definition"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_definition_version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    version: int
    source: str
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of the event log's state as of one event id (engine/audit.py); the key is never here.

    Kept for convenience (the newest anchors `audit verify` when the key is given); deleting or editing rows is
    found by their chain and MACs, deleting the newest ones only with a checkpoint exported elsewhere.
    """

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    created_at: str = Field(max_length=40)  # the exact ISO text the MAC covers
    reason: str = Field(max_length=200)
    last_event_id: int
    cases: int
    events: int
    root: str = Field(max_length=64)
    previous: str | None = Field(default=None, max_length=64)
    key_id: str = Field(max_length=16)
    mac: str = Field(max_length=64)
