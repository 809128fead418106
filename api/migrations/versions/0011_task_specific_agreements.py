"""Task-specific agreements: the link of each to the framework agreement it implements

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import engine.models

revision: str = "0011"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_agreement_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("framework_id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Integer(), nullable=False),
        sa.Column("theme", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("outside_framework", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", engine.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agreement_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"]),
        sa.ForeignKeyConstraint(["framework_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agreement_id", name="uq_task_agreement_link_agreement"),
    )
    op.create_index("ix_task_agreement_link_framework_id", "task_agreement_link", ["framework_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_agreement_link_framework_id", table_name="task_agreement_link")
    op.drop_table("task_agreement_link")
