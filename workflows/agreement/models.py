"""Tables of the agreement workflow: document versions, party signatories, decisions and signatures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from engine.models import utc_column


class DocumentVersion(SQLModel, table=True):
    """One version of an agreement's Markdown text and its SHA-256."""

    __tablename__ = "document_version"
    __table_args__ = (UniqueConstraint("case_id", "number", name="uq_document_case_number"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    number: int
    text: str
    sha256: str = Field(max_length=64, index=True)
    note: str | None = None
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_column=utc_column())


class PartySignatory(SQLModel, table=True):
    """A person who signs for one party of an agreement."""

    __tablename__ = "party_signatory"
    __table_args__ = (UniqueConstraint("party_case_id", "person_id", name="uq_party_signatory"),)
    id: int | None = Field(default=None, primary_key=True)
    party_case_id: int = Field(foreign_key="case.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)


class Decision(SQLModel, table=True):
    """A party's body's decision on one version of the text (body + date + § of the minutes)."""

    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    party_case_id: int = Field(foreign_key="case.id", index=True)
    outcome: str = Field(max_length=20)  # approved | declined
    body: str = Field(max_length=200)
    decided_on: date
    section: str = Field(max_length=20)
    minutes_url: str | None = Field(default=None, max_length=1000)
    # the minutes' publication online and an electronic notice to a party: finality is counted from them
    # (Local Government Act 410/2015 § 140; workflows/agreement/finality.py)
    published_on: date | None = None
    notice_sent_on: date | None = None
    note: str | None = None
    document_version_id: int = Field(foreign_key="document_version.id")
    document_sha256: str = Field(max_length=64)
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    # whom the recorder acted for as a substitute (varahenkilö); the event's payload records the same
    on_behalf_of_person_id: int | None = Field(default=None, foreign_key="person.id")
    recorded_at: datetime = Field(sa_column=utc_column())
    voided_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Signature(SQLModel, table=True):
    """One signatory's signature on one version of the text."""

    __tablename__ = "signature"
    __table_args__ = (
        # once per signatory and version among the valid ones: a party asked again on the same text (a claim for
        # rectification upheld voided its decision and signatures) signs it again
        Index("uq_signature_once", "party_case_id", "person_id", "document_version_id", unique=True,
              sqlite_where=text("voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
        Index("ix_signature_party_hash", "party_case_id", "document_sha256"),
    )
    id: int | None = Field(default=None, primary_key=True)
    party_case_id: int = Field(foreign_key="case.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    on_behalf_of_person_id: int | None = Field(default=None, foreign_key="person.id")
    document_version_id: int = Field(foreign_key="document_version.id")
    document_sha256: str = Field(max_length=64)
    signed_at: datetime = Field(sa_column=utc_column())
    voided_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class DecisionClaim(SQLModel, table=True):
    """A claim for rectification (oikaisuvaatimus) or an appeal against a party's decision, and its outcome.

    kind: rectification | appeal; outcome: pending | upheld | rejected | withdrawn (an upheld one voids the
    decision and the party is asked again).
    """

    __tablename__ = "decision_claim"
    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="decision.id", index=True)
    party_case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=20)
    claimant: str = Field(max_length=200)
    filed_on: date
    reference: str | None = Field(default=None, max_length=100)
    outcome: str = Field(default="pending", max_length=20)
    outcome_on: date | None = None
    outcome_note: str | None = Field(default=None, max_length=2000)
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
    recorded_at: datetime = Field(sa_column=utc_column())
    decided_by: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
