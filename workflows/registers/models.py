"""Tables of the registers: meetings (date, kind, minutes link) and statements (title, date, to whom)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from engine.models import utc_column

MEETING_KINDS = ("regional_directors", "chairs_and_directors", "kuntaliitto_leadership", "network", "other")


class Meeting(SQLModel, table=True):
    """A meeting held or planned, e.g. a regional directors' meeting (maakuntajohtajakokous)."""

    __tablename__ = "register_meeting"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    title: str = Field(max_length=300)
    held_on: date = Field(index=True)
    minutes_url: str | None = Field(default=None, max_length=1000)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    network: str | None = Field(default=None, max_length=40)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class Statement(SQLModel, table=True):
    """A statement or position (kannanotto) issued on a date to an addressee."""

    __tablename__ = "register_statement"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    issued_on: date = Field(index=True)
    addressee: str = Field(max_length=300)
    url: str | None = Field(default=None, max_length=1000)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())
