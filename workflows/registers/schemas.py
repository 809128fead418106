"""Request and response shapes of the registers."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from engine.text import SingleLine

MeetingKind = Literal["regional_directors", "chairs_and_directors", "kuntaliitto_leadership", "network", "other"]


class MeetingIn(BaseModel):
    """A meeting to register."""

    model_config = ConfigDict(extra="forbid")
    kind: MeetingKind
    title: SingleLine = Field(min_length=2, max_length=300, examples=["Maakuntajohtajakokous"])
    held_on: date
    minutes_url: HttpUrl | None = None
    organisation: str | None = Field(default=None, max_length=80, description="Host, kind:code")
    network: Literal["alke", "alsu", "hallintojohtajat", "viestinta"] | None = None


class MeetingRead(BaseModel):
    """A registered meeting."""

    id: int
    kind: str
    title: str
    held_on: date
    minutes_url: str | None
    organisation: str | None
    network: str | None


class StatementIn(BaseModel):
    """A statement to register."""

    model_config = ConfigDict(extra="forbid")
    title: SingleLine = Field(min_length=2, max_length=300)
    issued_on: date
    addressee: SingleLine = Field(min_length=2, max_length=300, examples=["Valtiovarainministeriö"])
    url: HttpUrl | None = None
    organisation: str | None = Field(default=None, max_length=80)


class StatementRead(BaseModel):
    """A registered statement."""

    id: int
    title: str
    issued_on: date
    addressee: str
    url: str | None
    organisation: str | None
