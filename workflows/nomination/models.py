"""Tables of nominations: seats, proposed candidates, the decision, appointments (with history) and letters."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.models import utc_column

GENDERS = ("woman", "man", "other")
POSITIONS = ("member", "deputy")


class NominationSeat(SQLModel, table=True):
    """One seat of the requested group: a member and, if asked, a deputy."""

    __tablename__ = "nomination_seat"
    __table_args__ = (UniqueConstraint("case_id", "number", name="uq_nomination_seat"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    number: int
    label: str | None = Field(default=None, max_length=200)
    has_deputy: bool = True


class Candidate(SQLModel, table=True):
    """A person an organisation proposed for a seat and position; gender is kept for Equality Act §4 a."""

    __tablename__ = "nomination_candidate"
    __table_args__ = (Index("ix_candidate_nomination", "nomination_id", "superseded_at"),)
    id: int | None = Field(default=None, primary_key=True)
    nomination_id: int = Field(foreign_key="case.id")
    proposal_case_id: int = Field(foreign_key="case.id", index=True)
    proposal_version: int
    seat: int
    position: str = Field(max_length=10)  # member | deputy
    person_id: int | None = Field(default=None, foreign_key="person.id")
    name: str = Field(max_length=200)
    gender: str = Field(max_length=10)
    organisation_key: str = Field(max_length=80)
    email: str | None = Field(default=None, max_length=320)
    title: str | None = Field(default=None, max_length=200)
    superseded_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class ProposalException(SQLModel, table=True):
    """The reason an organisation gives for not proposing both a woman and a man for a seat."""

    __tablename__ = "nomination_exception"
    id: int | None = Field(default=None, primary_key=True)
    proposal_case_id: int = Field(foreign_key="case.id", index=True)
    proposal_version: int
    seat: int
    position: str = Field(max_length=10)
    reason: str


class NominationDecision(SQLModel, table=True):
    """The regional directors' meeting's decision: body, date, § and the resulting gender shares."""

    __tablename__ = "nomination_decision"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    body: str = Field(max_length=200)
    meeting_date: date
    section: str = Field(max_length=20)
    minutes_url: str | None = Field(default=None, max_length=1000)
    women_members: int = 0
    men_members: int = 0
    members: int = 0
    women_deputies: int = 0
    men_deputies: int = 0
    deputies: int = 0
    justification: str | None = None
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    recorded_at: datetime = Field(sa_column=utc_column())


class Appointment(SQLModel, table=True):
    """Who holds a seat's member or deputy position from when to when; replacements end the previous row."""

    __tablename__ = "nomination_appointment"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    seat: int
    position: str = Field(max_length=10)
    candidate_id: int | None = Field(default=None, foreign_key="nomination_candidate.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    name: str = Field(max_length=200)
    gender: str = Field(max_length=10)
    organisation_key: str = Field(max_length=80)
    email: str | None = Field(default=None, max_length=320)
    starts_on: date
    ends_on: date | None = None  # None while current
    replaces_id: int | None = Field(default=None)
    reason: str | None = None
    decision_ref: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=utc_column())


class NominationLetter(SQLModel, table=True):
    """The nomination letter as rendered and sent: language, recipients, text and HTML."""

    __tablename__ = "nomination_letter"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    language: str = Field(max_length=2)
    to_address: str = Field(max_length=320)
    cc: str = Field(default="")  # comma-separated nominee addresses
    subject: str = Field(max_length=500)
    text: str
    html: str
    created_at: datetime = Field(sa_column=utc_column())
