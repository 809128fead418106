"""The calendar feed secrets: one per person or organisation, stored only as a hash."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from engine.models import utc_column


class CalendarFeed(SQLModel, table=True):
    """A subscribable iCalendar feed; calendar clients send no headers, so the URL carries a secret."""

    __tablename__ = "calendar_feed"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    language: str = Field(default="fi", max_length=2)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
