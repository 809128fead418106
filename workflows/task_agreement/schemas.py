"""Request and response shapes of task-specific agreements."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from engine.text import MultiLine, SingleLine
from workflows.agreement.schemas import AgreementCreate, AgreementRead, PartyIn


class TaskAgreementCreate(AgreementCreate):
    """A new task-specific agreement in draft: an agreement of its own, with a theme, on a framework in force."""

    model_config = ConfigDict(extra="forbid")
    theme: SingleLine = Field(min_length=1, max_length=200, examples=["Lasten, nuorten ja perheiden palvelut (LAPE)"])
    # an empty list is refused by the service, so the refusal names the field in the caller's language
    parties: list[PartyIn] = Field(max_length=400)


class ContinueIn(BaseModel):
    """Why a task-specific agreement goes on after its framework agreement was terminated."""

    model_config = ConfigDict(extra="forbid")
    reason: MultiLine = Field(min_length=1, max_length=2000)


class PartyWarning(BaseModel):
    """A party named that is not a party of the framework agreement (accepted, recorded)."""

    field: str = Field(examples=["parties[2].organisation"])
    organisation: str
    message_id: str = "task_agreement.warning.outside_framework"
    detail: str


class FrameworkRef(BaseModel):
    """The framework agreement a task-specific agreement implements (title and state only for its readers)."""

    id: int
    title: str | None = None
    state: str | None = None
    theme: str
    outside_framework: list[str]
    ended_on: date | None = Field(default=None, description="when the framework was terminated: its end date")
    continued_alone: bool = Field(default=False, description="its coordinator chose to go on without it")
    continued_alone_reason: str | None = None


class TaskAgreementSummary(BaseModel):
    """A task-specific agreement as its framework lists it."""

    id: int
    title: str
    theme: str
    state: str
    deadline: date | None
    effective_deadline: date | None
    coordinator_id: int | None
    outside_framework: list[str]
    continued_alone: bool
    allowed_triggers: list[str]


class TaskAgreementCreated(BaseModel):
    """The new task-specific agreement, its framework, and the warnings about its parties."""

    agreement: AgreementRead
    framework: FrameworkRef
    warnings: list[PartyWarning]
