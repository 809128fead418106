"""The link of a task-specific agreement to the framework agreement it implements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.models import utc_column


class TaskAgreementLink(SQLModel, table=True):
    """One task-specific agreement (an agreement case) and the framework agreement (another one) it implements.

    A row of its own rather than the case's `parent_id`: that column already means "a party's approval case of
    this agreement" (children are counted for entry into force, and the parent's coordinator holds the
    coordinator role on them), so a task-specific agreement there would be taken for a party.
    """

    __tablename__ = "task_agreement_link"
    __table_args__ = (UniqueConstraint("agreement_id", name="uq_task_agreement_link_agreement"),)
    id: int | None = Field(default=None, primary_key=True)
    framework_id: int = Field(foreign_key="case.id", index=True)
    agreement_id: int = Field(foreign_key="case.id")
    theme: str = Field(max_length=200)
    # parties named that are not parties of the framework: accepted with a warning, recorded here and in the events
    outside_framework: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())
