"""Request and response shapes of the annual cycle API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.text import MultiLine, SingleLine

Theme = Literal["climate", "operating_model", "contract_based_cooperation", "work_based_immigration", "advocacy"]
Status = Literal["not_started", "ongoing", "done", "dropped"]
MILESTONES = ("cycle_created", "planning_meeting", "reporting_opens", "reporting_closes", "survey_opens",
              "survey_closes", "review_meeting", "annual_report_due")
QUESTIONS = ("cooperation", "advocacy", "information", "meetings", "kuntaliitto_support")


class Milestone(BaseModel):
    """A date in the cycle's calendar: month and day, in the cycle's year plus `year_offset`."""

    model_config = ConfigDict(extra="forbid")
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    year_offset: int = Field(default=0, ge=-1, le=1)


DEFAULT_MILESTONES: dict[str, dict[str, int]] = {
    "cycle_created": {"month": 9, "day": 1, "year_offset": -1},
    "planning_meeting": {"month": 10, "day": 15, "year_offset": -1},
    "reporting_opens": {"month": 11, "day": 2, "year_offset": 0},
    "reporting_closes": {"month": 1, "day": 15, "year_offset": 1},
    "survey_opens": {"month": 11, "day": 2, "year_offset": 0},
    "survey_closes": {"month": 11, "day": 30, "year_offset": 0},
    "review_meeting": {"month": 2, "day": 15, "year_offset": 1},
    "annual_report_due": {"month": 3, "day": 31, "year_offset": 1},
}


class ScheduleIn(BaseModel):
    """The administrators' yearly schedule; omitted milestones keep their current value."""

    model_config = ConfigDict(extra="forbid")
    cycle_created: Milestone | None = None
    planning_meeting: Milestone | None = None
    reporting_opens: Milestone | None = None
    reporting_closes: Milestone | None = None
    survey_opens: Milestone | None = None
    survey_closes: Milestone | None = None
    review_meeting: Milestone | None = None
    annual_report_due: Milestone | None = None
    coordinator_id: int | None = None


class ScheduleRead(BaseModel):
    """The schedule, and the dates it gives for the next cycle."""

    milestones: dict[str, Milestone]
    coordinator_id: int | None
    next_year: int
    next_creation: date
    planner_case_id: int | None


class MeasureIn(BaseModel):
    """One measure to agree."""

    model_config = ConfigDict(extra="forbid")
    title: SingleLine = Field(min_length=2, max_length=300)
    theme: Theme
    responsible: str = Field(min_length=3, max_length=80, examples=["regional_council:06", "network:alke"])
    due_date: date


class CycleCreate(BaseModel):
    """A cycle created by hand."""

    model_config = ConfigDict(extra="forbid")
    year: int = Field(ge=2000, le=2100)
    coordinator_id: int | None = None


class AgreeIn(BaseModel):
    """The measures the planning meeting agreed."""

    model_config = ConfigDict(extra="forbid")
    measures: list[MeasureIn] = Field(default_factory=list, max_length=1000)
    meeting_date: date | None = None


class MeasuresAdd(BaseModel):
    """Measures added later in the year."""

    model_config = ConfigDict(extra="forbid")
    measures: list[MeasureIn] = Field(min_length=1, max_length=1000)


class NoteIn(BaseModel):
    """A dated status note on a measure."""

    model_config = ConfigDict(extra="forbid")
    status: Status
    text: MultiLine = Field(min_length=1, max_length=4000)
    noted_on: date | None = None


class ReportMeasure(BaseModel):
    """What a report says about one measure."""

    model_config = ConfigDict(extra="forbid")
    measure_id: int
    status: Status
    note: MultiLine = Field(min_length=1, max_length=4000)


class ReportIn(BaseModel):
    """A network's or council's report."""

    model_config = ConfigDict(extra="forbid")
    summary: MultiLine = Field(min_length=1, max_length=20000)
    measures: list[ReportMeasure] = Field(default_factory=list, max_length=500)


class SurveyIn(BaseModel):
    """An answer to the annual survey of the regional directors: ratings 1-5 and free text."""

    model_config = ConfigDict(extra="forbid")
    ratings: dict[str, Any] = Field(description=f"one rating 1-5 per question: {', '.join(QUESTIONS)}")
    comments: MultiLine | None = Field(default=None, max_length=10000)


class ReportRequestIn(BaseModel):
    """A report request to a network or responsible council, with its deadline."""

    model_config = ConfigDict(extra="forbid")
    responsible: str = Field(min_length=3, max_length=80, examples=["network:alke", "regional_council:06"])
    deadline: date


class CloseIn(BaseModel):
    """The follow-up meeting's feedback for Kuntaliitto; closing generates the annual report."""

    model_config = ConfigDict(extra="forbid")
    feedback: MultiLine = Field(min_length=1, max_length=20000)


class MeasureRead(BaseModel):
    """A measure with its notes."""

    id: int
    number: int
    title: str
    theme: str
    responsible: str
    due_date: date
    status: str
    carried_from_id: int | None
    notes: list[dict[str, Any]]
    carried_to_id: int | None = None


class ReportRequestRead(BaseModel):
    """A report request and its versions."""

    case_id: int
    responsible: str
    state: str
    deadline: date | None
    versions: list[dict[str, Any]]
    recipients: int | None = Field(default=None, description="how many people the request was mailed to")
    unreachable: bool = Field(default=False, description="nobody received the request: add a contact person")


class CycleRead(BaseModel):
    """A cycle with its measures, report requests and survey summary."""

    id: int
    year: int
    state: str
    version: int
    deadline: date | None
    milestones: dict[str, date]
    measures: list[MeasureRead]
    report_requests: list[ReportRequestRead]
    survey: dict[str, Any]
    feedback: str | None
    annual_report_generated_at: datetime | None
    allowed_triggers: list[str]
