"""Index only the pending timers by due time (ix_timer_pending_due) instead of every timer by (status, due_at)

A timer that fires or is cancelled then leaves the index instead of moving inside it: an approval cancels a
party's 8 reminders, which in the (status, due_at) index was 8 entries deleted and 8 inserted elsewhere, 13 of
the signature's 22 SQLite WAL frames (bench.approvals). The sweep, the next-due probe and the metrics read only
pending timers, through `engine.models.timer_pending()` (the predicate as a literal, which the planners need).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "status = 'pending'"


def upgrade() -> None:
    op.drop_index("ix_timer_due", table_name="timer")
    op.create_index("ix_timer_pending_due", "timer", ["due_at"], unique=False,
                    sqlite_where=sa.text(_PENDING), postgresql_where=sa.text(_PENDING))


def downgrade() -> None:
    op.drop_index("ix_timer_pending_due", table_name="timer")
    op.create_index("ix_timer_due", "timer", ["status", "due_at"], unique=False)
