"""Tables of the annual cycle: the schedule, measures with dated notes, reports (versioned) and survey answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.models import utc_column

THEMES = ("climate", "operating_model", "contract_based_cooperation", "work_based_immigration", "advocacy")
NETWORKS = ("alke", "alsu", "hallintojohtajat", "viestinta")
STATUSES = ("not_started", "ongoing", "done", "dropped")
UNFINISHED = ("not_started", "ongoing")


class CycleSchedule(SQLModel, table=True):
    """The administrators' yearly schedule: each milestone as month, day and year offset from the cycle year."""

    __tablename__ = "cycle_schedule"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="default", max_length=80, unique=True)
    milestones: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    coordinator_id: int | None = Field(default=None, foreign_key="person.id")
    case_id: int | None = Field(default=None, foreign_key="case.id")  # the case whose timer creates cycles
    updated_at: datetime = Field(sa_column=utc_column())


class Measure(SQLModel, table=True):
    """One agreed measure (toimenpide): theme, responsible organisation or network, due date, status."""

    __tablename__ = "cycle_measure"
    __table_args__ = (Index("ix_measure_cycle_responsible", "cycle_id", "responsible"),)
    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="case.id")
    number: int
    title: str = Field(max_length=300)
    theme: str = Field(max_length=40)
    responsible: str = Field(max_length=80)  # organisation kind:code or network:<key>
    due_date: date
    status: str = Field(default="not_started", max_length=20)
    carried_from_id: int | None = Field(default=None, foreign_key="cycle_measure.id")
    created_at: datetime = Field(sa_column=utc_column())


class MeasureNote(SQLModel, table=True):
    """A dated status note on a measure."""

    __tablename__ = "cycle_measure_note"
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="cycle_measure.id", index=True)
    noted_on: date
    status: str = Field(max_length=20)
    text: str
    report_id: int | None = Field(default=None, foreign_key="cycle_report.id")
    author_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class CycleReport(SQLModel, table=True):
    """One version of a network's or council's report; a later version replaces it, both are kept."""

    __tablename__ = "cycle_report"
    __table_args__ = (UniqueConstraint("request_case_id", "version", name="uq_cycle_report_version"),)
    id: int | None = Field(default=None, primary_key=True)
    request_case_id: int = Field(foreign_key="case.id", index=True)
    cycle_id: int = Field(foreign_key="case.id", index=True)
    version: int
    summary: str
    measures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    author_id: int | None = Field(default=None, foreign_key="person.id")
    submitted_at: datetime = Field(sa_column=utc_column())


class SurveyAnswer(SQLModel, table=True):
    """A regional council's answer to the annual survey of the regional directors (mkj-kysely)."""

    __tablename__ = "cycle_survey_answer"
    __table_args__ = (UniqueConstraint("cycle_id", "organisation_id", "version", name="uq_survey_answer_version"),)
    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="case.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    version: int
    ratings: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    comments: str | None = None
    respondent_id: int | None = Field(default=None, foreign_key="person.id")
    submitted_at: datetime = Field(sa_column=utc_column())


class NetworkMember(SQLModel, table=True):
    """A person who reports for a network of the regional councils (alke, alsu, hallintojohtajat, viestintä)."""

    __tablename__ = "cycle_network_member"
    __table_args__ = (UniqueConstraint("network", "person_id", name="uq_network_member"),)
    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=40)
    person_id: int = Field(foreign_key="person.id", index=True)


class AnnualReport(SQLModel, table=True):
    """The annual report (toimintakertomus) as generated when the cycle closed."""

    __tablename__ = "cycle_annual_report"
    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="case.id", index=True)
    html: str
    sha256: str = Field(max_length=64)
    generated_at: datetime = Field(sa_column=utc_column())
