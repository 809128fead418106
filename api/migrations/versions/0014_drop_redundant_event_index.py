"""Drop the event table's index on case_id alone: the unique (case_id, seq) index serves those look-ups

Every event paid a random insert into both; at 100,000 cases the second one was a measurable part of what a
transition costs more than at 1,000 (bench.transitions --scale, docs/benchmarks.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 07:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_case_id"))


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_case_id"), ["case_id"], unique=False)
