"""Decision finality: the minutes' publication date and a party's electronic notice, claims and appeals

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import engine.models

revision: str = '0010'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a signature is unique per signatory and version among the valid ones only: a party whose decision an upheld
    # claim voided signs the same text again
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.drop_constraint('uq_signature_once', type_='unique')
    op.create_index('uq_signature_once', 'signature', ['party_case_id', 'person_id', 'document_version_id'],
                    unique=True, sqlite_where=sa.text('voided_at IS NULL'),
                    postgresql_where=sa.text('voided_at IS NULL'))
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('notice_sent_on', sa.Date(), nullable=True))
    op.create_table('decision_claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('party_case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('claimant', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('outcome_on', sa.Date(), nullable=True),
    sa.Column('outcome_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('recorded_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', engine.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['decision_id'], ['decision.id'], ),
    sa.ForeignKeyConstraint(['party_case_id'], ['case.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decision_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_claim_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_claim_party_case_id'), ['party_case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('decision_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_claim_party_case_id'))
        batch_op.drop_index(batch_op.f('ix_decision_claim_decision_id'))
    op.drop_table('decision_claim')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_column('notice_sent_on')
        batch_op.drop_column('published_on')
    op.drop_index('uq_signature_once', table_name='signature')
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_signature_once', ['party_case_id', 'person_id', 'document_version_id'])
