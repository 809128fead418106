"""Request and response shapes of council-term reviews."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from engine.text import MultiLine


class ReviewStart(BaseModel):
    """Open the current term's review of an agreement by hand, with an optional earlier deadline."""

    model_config = ConfigDict(extra="forbid")
    deadline: date | None = None


class ConfirmIn(BaseModel):
    """The parties confirmed the agreement unchanged."""

    model_config = ConfigDict(extra="forbid")
    note: MultiLine | None = Field(default=None, max_length=4000)
    minutes_url: HttpUrl | None = None


class ReviseIn(BaseModel):
    """The revised text that goes round for approval again."""

    model_config = ConfigDict(extra="forbid")
    text: MultiLine = Field(min_length=1, max_length=500_000)
    note: MultiLine | None = Field(default=None, max_length=2000)


class ReviewRead(BaseModel):
    """A review case."""

    id: int
    agreement_id: int
    state: str
    term_start: date
    term_end: date
    deadline: date | None = Field(description="The review's deadline as set (a Helsinki local date)")
    effective_deadline: date | None = Field(
        default=None, description="The deadline in effect: moved to the next business day by Act 150/1930")
    allowed_triggers: list[str]
