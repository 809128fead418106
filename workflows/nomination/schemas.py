"""Request and response shapes of the nomination API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, model_validator

from engine.text import MultiLine, SingleLine

Gender = Literal["woman", "man", "other"]
Position = Literal["member", "deputy"]
Language = Literal["fi", "sv", "en"]


class RequesterIn(BaseModel):
    """Who asks: an organisation from the register (e.g. ministry:vm) or a free-text body, and where to write."""

    model_config = ConfigDict(extra="forbid")
    organisation: str | None = Field(default=None, max_length=80, examples=["association:kuntaliitto"])
    name: SingleLine = Field(min_length=2, max_length=300, examples=["Valtiovarainministeriö"])
    email: EmailStr
    contact_person: SingleLine | None = Field(default=None, max_length=200)
    language: Language = "fi"


class SeatIn(BaseModel):
    """One seat: a member, with or without a deputy."""

    model_config = ConfigDict(extra="forbid")
    label: SingleLine | None = Field(default=None, max_length=200)
    has_deputy: bool = True


class AskedIn(BaseModel):
    """Which organisations are asked: named ones, all regional councils, and/or one region's organisations."""

    model_config = ConfigDict(extra="forbid")
    organisations: list[str] = Field(default_factory=list, max_length=400)
    all_regional_councils: bool = False
    region: str | None = Field(default=None, max_length=10, examples=["06"])
    region_kinds: list[Literal["municipality", "regional_council", "wellbeing_county"]] = Field(
        default_factory=lambda: ["municipality"])  # type: ignore[arg-type]


class NominationCreate(BaseModel):
    """A new nomination request."""

    model_config = ConfigDict(extra="forbid")
    requester: RequesterIn
    group: SingleLine = Field(min_length=2, max_length=300, examples=["Alueiden kehittämisen lainvalmisteluryhmä"])
    description: MultiLine | None = Field(default=None, max_length=4000)
    seats: list[SeatIn] = Field(min_length=1, max_length=50)
    term_start: date
    term_end: date
    deadline: date = Field(description="Proposals are due by this Helsinki date (23:59:59)")
    asked: AskedIn
    coordinator_id: int | None = None

    @model_validator(mode="after")
    def _dates(self) -> NominationCreate:
        if self.term_end <= self.term_start:
            raise ValueError("term_end must be after term_start")
        return self


class CandidateIn(BaseModel):
    """A proposed person: a person record, or name + gender + organisation + email."""

    model_config = ConfigDict(extra="forbid")
    seat: int = Field(ge=1)
    position: Position = "member"
    person_id: int | None = None
    name: SingleLine | None = Field(default=None, min_length=2, max_length=200)
    gender: Gender
    organisation: str | None = Field(default=None, max_length=80)
    email: EmailStr | None = None
    title: SingleLine | None = Field(default=None, max_length=200)


class SeatException(BaseModel):
    """Why a seat (position) has no woman-and-man pair."""

    model_config = ConfigDict(extra="forbid")
    seat: int = Field(ge=1)
    position: Position = "member"
    reason: MultiLine = Field(min_length=5, max_length=2000)


class ProposalIn(BaseModel):
    """An organisation's proposal: candidates per seat and reasons for any exceptions."""

    model_config = ConfigDict(extra="forbid")
    candidates: list[CandidateIn] = Field(min_length=1, max_length=200)
    exceptions: list[SeatException] = Field(default_factory=list, max_length=100)


class WaiveIn(BaseModel):
    """Why an organisation proposes nobody."""

    model_config = ConfigDict(extra="forbid")
    reason: MultiLine | None = Field(default=None, max_length=2000)


class SeatChoice(BaseModel):
    """The member and deputy chosen for one seat, by candidate id."""

    model_config = ConfigDict(extra="forbid")
    seat: int = Field(ge=1)
    member: int
    deputy: int | None = None


class DecisionIn(BaseModel):
    """The regional directors' meeting's decision."""

    model_config = ConfigDict(extra="forbid")
    body: SingleLine = Field(default="Maakuntajohtajakokous", min_length=2, max_length=200)
    meeting_date: date
    section: str = Field(min_length=1, max_length=20, pattern=r"^(§\s*)?\d{1,5}[a-z]?$", examples=["§ 12"])
    minutes_url: HttpUrl | None = None
    seats: list[SeatChoice] = Field(min_length=1, max_length=50)
    justification: MultiLine | None = Field(default=None, max_length=4000,
                                      description="Required when women or men are below 40 % of members or deputies")


class ReplacementIn(BaseModel):
    """A mid-term change (jäsenmuutos): who leaves a seat's position, who comes in, from when."""

    model_config = ConfigDict(extra="forbid")
    seat: int = Field(ge=1)
    position: Position = "member"
    candidate_id: int | None = Field(default=None, description="A proposed candidate, or give the person below")
    person_id: int | None = None
    name: SingleLine | None = Field(default=None, min_length=2, max_length=200)
    gender: Gender | None = None
    organisation: str | None = Field(default=None, max_length=80)
    email: EmailStr | None = None
    effective_date: date
    reason: MultiLine | None = Field(default=None, max_length=2000)
    decision_ref: SingleLine | None = Field(default=None, max_length=300,
                                            examples=["Maakuntajohtajakokous 3.9.2026 § 7"])
    justification: MultiLine | None = Field(default=None, max_length=4000)


class CancelIn(BaseModel):
    """Why a request is cancelled."""

    model_config = ConfigDict(extra="forbid")
    reason: MultiLine = Field(min_length=1, max_length=2000)


class CandidateRead(BaseModel):
    """A proposed candidate."""

    id: int
    seat: int
    position: str
    name: str
    gender: str
    organisation: str
    email: str | None
    person_id: int | None


class ProposalRead(BaseModel):
    """One asked organisation's proposal case."""

    case_id: int
    organisation: str
    organisation_name: str
    state: str
    version: int
    candidates: list[CandidateRead]
    exceptions: list[dict[str, object]]


class AppointmentRead(BaseModel):
    """A seat's member or deputy over a period."""

    id: int
    seat: int
    position: str
    name: str
    gender: str
    organisation: str
    email: str | None
    starts_on: date
    ends_on: date | None
    replaces_id: int | None
    reason: str | None


class Shares(BaseModel):
    """Women and men among the members and among the deputies."""

    members: int
    women_members: int
    men_members: int
    women_members_pct: float | None
    men_members_pct: float | None
    deputies: int
    women_deputies: int
    men_deputies: int
    women_deputies_pct: float | None
    men_deputies_pct: float | None


class NominationDecisionRead(BaseModel):
    """The recorded decision."""

    id: int
    body: str
    meeting_date: date
    section: str
    citation: str
    justification: str | None
    shares: Shares


class NominationRead(BaseModel):
    """A nomination request with proposals, decision and appointments."""

    id: int
    state: str
    version: int
    group: str
    requester: dict[str, object]
    term_start: date
    term_end: date
    deadline: date
    seats: list[dict[str, object]]
    proposals: list[ProposalRead]
    decision: NominationDecisionRead | None
    appointments: list[AppointmentRead]
    current: list[AppointmentRead]
    letter_id: int | None
    allowed_triggers: list[str]
    created_at: datetime
