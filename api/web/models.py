"""Tables of the web interface: server-side sessions, substitutes (varahenkilö), their acts, sign-in failures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from engine.models import utc_column


class WebSession(SQLModel, table=True):
    """A signed-in browser; the cookie holds a random id, the table only its SHA-256."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    sid_hash: str = Field(unique=True, index=True, max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)
    csrf_token: str = Field(max_length=64)
    method: str = Field(max_length=20)  # link | password
    created_at: datetime = Field(sa_column=utc_column())
    last_seen_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())  # the absolute timeout
    ended_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Delegation(SQLModel, table=True):
    """A substitute (varahenkilö) may act for a person from one Helsinki date to another, both included."""

    __tablename__ = "delegation"
    __table_args__ = (Index("ix_delegation_substitute_period", "substitute_id", "starts_on", "ends_on"),)
    id: int | None = Field(default=None, primary_key=True)
    principal_id: int = Field(foreign_key="person.id", index=True)
    substitute_id: int = Field(foreign_key="person.id")
    starts_on: date
    ends_on: date
    note: str | None = Field(default=None, max_length=500)
    created_by: int = Field(foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class DelegatedAct(SQLModel, table=True):
    """An event a substitute caused for someone else, written in the event's own transaction."""

    __tablename__ = "delegated_act"
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", unique=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    principal_id: int = Field(foreign_key="person.id")
    substitute_id: int = Field(foreign_key="person.id")
    delegation_id: int | None = Field(default=None, foreign_key="delegation.id")


class SignInFailure(SQLModel, table=True):
    """A bad link token, bad password or link request from one address, or against one account; counted to slow
    guessing down. `ip` is the key counted: a client address, or `account:<hash>` for an account (api/web/auth.py)."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_ip_at", "ip", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    ip: str = Field(max_length=64)
    kind: str = Field(max_length=20)  # link | password | renew
    at: datetime = Field(sa_column=utc_column())


class PasswordReset(SQLModel, table=True):
    """An emailed password-reset link: single use, an hour long; the table keeps only the token's SHA-256."""

    __tablename__ = "password_reset"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
