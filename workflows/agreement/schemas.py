"""Request and response shapes of the agreement API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from engine.text import MultiLine, SingleLine


class PartyIn(BaseModel):
    """One party of a new agreement."""

    model_config = ConfigDict(extra="forbid")
    organisation: str = Field(min_length=3, max_length=80, examples=["municipality:837"])
    signatories: list[int] = Field(min_length=1, max_length=10)
    required_signatures: int = Field(default=1, ge=1, le=10)


class AgreementCreate(BaseModel):
    """A new agreement in draft."""

    model_config = ConfigDict(extra="forbid")
    title: SingleLine = Field(min_length=1, max_length=300)
    document: MultiLine = Field(min_length=1, max_length=500_000, description="Markdown text")
    deadline: date = Field(description="Approval deadline, a Helsinki local date")
    coordinator_id: int | None = None
    parties: list[PartyIn] = Field(min_length=1, max_length=400)
    reminder_offsets: list[str] | None = Field(default=None, max_length=20,
                                               description="ISO 8601 offsets, e.g. -P14D, -P7D, +P1D")


class DocumentIn(BaseModel):
    """A new version of the text."""

    model_config = ConfigDict(extra="forbid")
    text: MultiLine = Field(min_length=1, max_length=500_000)
    note: MultiLine | None = Field(default=None, max_length=2000)


class DecisionIn(BaseModel):
    """A party's decision, cited as body + date + § of the minutes."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal["approved", "declined"]
    body: SingleLine = Field(min_length=2, max_length=200, examples=["Kunnanhallitus"])
    decided_on: date
    section: str = Field(min_length=1, max_length=20, pattern=r"^(§\s*)?\d{1,5}[a-z]?$", examples=["§ 58"])
    minutes_url: HttpUrl | None = None
    published_on: date | None = Field(
        default=None, description="The day the minutes were published online (410/2015 § 140); finality counts "
        "from it; not before decided_on")
    notice_sent_on: date | None = Field(
        default=None, description="The day the decision was sent to a party as an electronic notice, if it was")
    note: MultiLine | None = Field(default=None, max_length=4000, description="Reservation or remark")
    document_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the text the decision was made on; refused with 409 when it is no longer current")


class SignIn(BaseModel):
    """What a signature is made on."""

    model_config = ConfigDict(extra="forbid")
    document_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the text being signed; refused with 409 when it is no longer current")


class WithdrawIn(BaseModel):
    """Why the agreement is withdrawn."""

    model_config = ConfigDict(extra="forbid")
    reason: MultiLine | None = Field(default=None, max_length=2000)


class TerminateIn(BaseModel):
    """Why and when the agreement ends."""

    model_config = ConfigDict(extra="forbid")
    reason: MultiLine = Field(min_length=1, max_length=2000)
    end_date: date


class PublicationIn(BaseModel):
    """When the minutes of a recorded decision were published online (and sent to a party as an electronic notice)."""

    model_config = ConfigDict(extra="forbid")
    published_on: date | None = None
    notice_sent_on: date | None = None


class ClaimIn(BaseModel):
    """A claim for rectification (oikaisuvaatimus) or an appeal against a party's decision: who, when, reference."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["rectification", "appeal"] = "rectification"
    claimant: SingleLine = Field(min_length=2, max_length=200, description="Who made it")
    filed_on: date = Field(description="When it was filed; not before the decision, not in the future")
    reference: SingleLine | None = Field(default=None, max_length=100, description="The claim's record number")


class ClaimOutcomeIn(BaseModel):
    """How a claim was decided: upheld (the decision is void, the party is asked again), rejected or withdrawn."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal["upheld", "rejected", "withdrawn"]
    outcome_on: date = Field(description="When; not before the claim was filed, not in the future")
    note: MultiLine | None = Field(default=None, max_length=2000)


class ClaimRead(BaseModel):
    """A recorded claim for rectification or appeal and its outcome."""

    id: int
    kind: str
    claimant: str
    filed_on: date
    reference: str | None
    outcome: str = Field(description="pending, upheld, rejected or withdrawn")
    outcome_on: date | None
    outcome_note: str | None


class DecisionRead(BaseModel):
    """A recorded decision."""

    id: int
    outcome: str
    body: str
    decided_on: date
    section: str
    minutes_url: str | None
    note: str | None
    document_sha256: str
    citation: str
    recorded_at: datetime
    recorded_by_person_id: int | None = None
    on_behalf_of_person_id: int | None = Field(
        default=None, description="when a substitute recorded it: the person they acted for (recorded_by is the "
        "substitute)")
    on_behalf_of_name: str | None = None
    published_on: date | None = Field(default=None, description="The minutes' publication online")
    notice_sent_on: date | None = Field(default=None, description="An electronic notice sent to a party")
    notified_on: date | None = Field(default=None, description="Deemed notification (410/2015 § 140)")
    claim_deadline: date | None = Field(
        default=None, description="Last day for a claim for rectification: 14 days after notification, moved to "
        "the next business day by Act 150/1930")
    final_on: date | None = Field(
        default=None, description="The day it is or becomes final (lainvoimainen) unless a (further) claim is "
        "made: final from that day when `finality` is counting; none while unpublished, contested or void")
    finality: str = Field(default="unpublished", description="unpublished, counting, contested or void")
    claims: list[ClaimRead] = Field(default_factory=list)


class SignatureRead(BaseModel):
    """A recorded signature."""

    id: int
    person_id: int
    person_name: str
    on_behalf_of_person_id: int | None = Field(
        description="when a substitute signed: the substitute's person id (person_id is whom they signed for)")
    substitute_name: str | None = None
    document_sha256: str
    signed_at: datetime


class SignatoryRead(BaseModel):
    """A person who signs for a party."""

    person_id: int
    name: str
    has_signed: bool


class PartyRead(BaseModel):
    """A party with its state, decision and signatures on the current text."""

    case_id: int
    organisation: str
    organisation_name: str
    state: str
    required_signatures: int
    signatories: list[SignatoryRead]
    decision: DecisionRead | None
    signatures: list[SignatureRead]


class AgreementRead(BaseModel):
    """An agreement: state, current text version and hash, and every party."""

    id: int
    title: str
    state: str
    version: int
    workflow_version: int
    deadline: date | None = Field(description="The deadline as asked (a Helsinki local date)")
    effective_deadline: date | None = Field(
        default=None, description="The deadline in effect: moved to the next business day by Act 150/1930")
    coordinator_id: int | None
    document_version: int
    document_sha256: str
    document: str
    in_force_sha256: str | None
    in_force_at: datetime | None
    parties_total: int
    parties_approved: int
    parties_signed: int
    parties: list[PartyRead]


class DocumentVersionRead(BaseModel):
    """One stored version of the text: its number, SHA-256, the coordinator's note, when and whether current."""

    number: int
    sha256: str
    note: str | None
    created_at: datetime
    current: bool


class SignatureResult(BaseModel):
    """Result of a signature request; `created` is false when it repeated an existing signature."""

    created: bool
    signature: SignatureRead
    party_state: str
    agreement_state: str


class DecisionResult(BaseModel):
    """Result of a decision request; `created` is false when it repeated the stored decision."""

    created: bool
    decision: DecisionRead
    party_state: str
    agreement_state: str
