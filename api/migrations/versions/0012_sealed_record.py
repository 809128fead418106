"""The sealed record of an agreement in force

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import engine.models

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sealed_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("text_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pdf_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(), nullable=False),
        sa.Column("made_at", engine.models.UTCDateTime(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sealed_record", schema=None) as batch_op:
        batch_op.create_index("ix_sealed_record_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_sealed_record_pdf_sha256", ["pdf_sha256"], unique=True)
        batch_op.create_index("ix_sealed_record_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sealed_record", schema=None) as batch_op:
        batch_op.drop_index("ix_sealed_record_status")
        batch_op.drop_index("ix_sealed_record_pdf_sha256")
        batch_op.drop_index("ix_sealed_record_case_id")
    op.drop_table("sealed_record")
