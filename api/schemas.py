"""Shapes shared by the API routes: errors, people, organisations, cases, events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from engine.text import SingleLine

Language = Literal["fi", "sv", "en"]
Role = Literal["signatory", "coordinator", "admin"]


class ErrorBody(BaseModel):
    """Every error response: the error class and a message a person can act on."""

    error: str
    detail: str
    message: str | None = None  # the detail in the caller's language (Accept-Language, else the page's, else fi)
    message_id: str | None = None
    field: str | None = None
    allowed: list[str] | None = None
    problems: list[dict[str, Any]] | None = None
    current_version: int | None = None
    current_sha256: str | None = None
    request_id: str | None = None  # quote it when reporting a problem: every log line of the request carries it


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [(400, "Bad request"), (401, "Not authenticated"), (403, "Not permitted"),
                       (404, "Not found"), (409, "Not allowed in this state, or stale"),
                       (413, "The request body is larger than the service accepts"),
                       (422, "Invalid input (the field is named)"), (503, "Database busy, retry")]
}


class OrganisationRead(BaseModel):
    """An organisation from the register."""

    model_config = ConfigDict(from_attributes=True)
    key: str
    kind: str
    code: str
    name_fi: str
    name_sv: str | None
    region_code: str | None
    wellbeing_county_code: str | None
    active: bool


class PersonBase(BaseModel):
    """Fields a person has."""

    name: SingleLine = Field(min_length=1, max_length=200)
    email: EmailStr
    language: Language = "fi"
    organisation: str | None = Field(default=None, max_length=80, examples=["municipality:837"])
    roles: list[Role] = Field(default_factory=list)
    title: SingleLine | None = Field(default=None, max_length=200)


class PersonCreate(PersonBase):
    """A new person."""

    model_config = ConfigDict(extra="forbid")


class PersonUpdate(BaseModel):
    """Changes to a person; omitted fields stay."""

    model_config = ConfigDict(extra="forbid")
    name: SingleLine | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    language: Language | None = None
    organisation: str | None = Field(default=None, max_length=80)
    roles: list[Role] | None = None
    title: SingleLine | None = Field(default=None, max_length=200)
    active: bool | None = None
    digest: bool | None = None


class PersonRead(BaseModel):
    """A person as the API shows them."""

    id: int
    name: str
    email: str
    language: str
    organisation: str | None
    roles: list[str]
    title: str | None
    active: bool
    digest: bool


class TokenCreate(BaseModel):
    """A label for a new token."""

    model_config = ConfigDict(extra="forbid")
    label: SingleLine = Field(default="", max_length=200)


class TokenIssued(BaseModel):
    """A token, shown this once."""

    token: str
    person_id: int
    label: str


class WorkflowSummary(BaseModel):
    """A loaded workflow."""

    name: str
    version: int
    versions: list[int]
    title: dict[str, str]
    description: str
    states: list[str]
    triggers: list[str]


class CaseRead(BaseModel):
    """A case."""

    id: int
    workflow: str
    workflow_version: int
    state: str
    version: int
    parent_id: int | None
    organisation: str | None
    coordinator_id: int | None
    title: str
    deadline: date | None
    overdue: bool
    allowed_triggers: list[str]
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EventRead(BaseModel):
    """One event of a case's history."""

    id: int
    seq: int
    at: datetime
    actor_id: int | None
    on_behalf_of: str | None
    trigger: str
    name: str
    from_state: str | None
    to_state: str
    payload: dict[str, Any]
    document_hash: str | None
    hash: str


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of results."""

    items: list[T]
    total: int
    limit: int
    offset: int
