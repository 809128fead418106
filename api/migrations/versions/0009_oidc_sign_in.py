"""OpenID Connect identity providers and sign-in attempts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import engine.models

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('oidc_provider',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('client_secret_encrypted', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('domains', sa.JSON(), nullable=False),
    sa.Column('organisations', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', engine.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('oidc_sign_in',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('code_verifier', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('next', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', engine.models.UTCDateTime(), nullable=False),
    sa.Column('used_at', engine.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['oidc_provider.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('state_hash')
    )
    with op.batch_alter_table('oidc_sign_in', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_sign_in_provider_id'), ['provider_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oidc_sign_in', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_sign_in_provider_id'))
    op.drop_table('oidc_sign_in')
    op.drop_table('oidc_provider')
