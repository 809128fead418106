"""The sealed record of an agreement in force: its table, and the reads others use (the public check).

A row is written as `pending` inside the transaction in which the agreement enters into force (or when someone
asks for the record of an agreement already in force); the PDF is made and sealed after the commit by the
scheduler leader's sweep (`workflows/agreement/record.py`), so a process that dies in between leaves a pending row
the next sweep fills. Once `made`, the row keeps the exact sealed bytes and their SHA-256.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, select
from sqlmodel import Field, Session, SQLModel, col

from engine.models import utc_column

PENDING = "pending"
MADE = "made"
FAILED = "failed"


class SealedRecord(SQLModel, table=True):
    """One sealed PDF record of one version of an agreement in force."""

    __tablename__ = "sealed_record"
    __table_args__ = (
        Index("ix_sealed_record_pdf_sha256", "pdf_sha256", unique=True),
        Index("ix_sealed_record_status", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    version_number: int
    text_sha256: str = Field(max_length=64)
    pdf_sha256: str | None = Field(default=None, max_length=64)
    status: str = Field(default=PENDING, max_length=20)  # pending | made | failed
    created_at: datetime = Field(sa_column=utc_column())
    made_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # how many times the sweep tried, and the last error (a failed row is retried up to a limit)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, max_length=1000)


def find_sealed_by_sha256(session: Session, sha256: str) -> SealedRecord | None:
    """Return the made record whose sealed PDF has this SHA-256 (lower-case hex), or None."""
    return (
        session.execute(
            select(SealedRecord).where(
                col(SealedRecord.pdf_sha256) == sha256.strip().lower(), col(SealedRecord.status) == MADE
            )
        )
        .scalars()
        .first()
    )


def latest_made(session: Session, case_id: int) -> SealedRecord | None:
    """Return the newest made record of an agreement, or None."""
    return (
        session.execute(
            select(SealedRecord)
            .where(col(SealedRecord.case_id) == case_id, col(SealedRecord.status) == MADE)
            .order_by(col(SealedRecord.id).desc())
        )
        .scalars()
        .first()
    )
