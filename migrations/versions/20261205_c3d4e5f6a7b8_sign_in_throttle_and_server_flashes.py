"""sign-in throttle per client address; flash messages kept server-side

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-12-05 07:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c3d4e5f6a7b8'
down_revision = 'b2c3d4e5f6a7'
branch_labels = None
depends_on = None


def upgrade():
    # Two new tables: staff_user and staff_session are not touched (no batch copy on SQLite).
    op.create_table('sign_in_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failure'))
    )
    op.create_index('ix_sign_in_failure_address_failed_at', 'sign_in_failure', ['address', 'failed_at'],
                    unique=False)
    op.create_table('pending_flash',
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key_hash', name=op.f('pk_pending_flash'))
    )
    op.create_index(op.f('ix_pending_flash_created_at'), 'pending_flash', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pending_flash_created_at'), table_name='pending_flash')
    op.drop_table('pending_flash')
    op.drop_index('ix_sign_in_failure_address_failed_at', table_name='sign_in_failure')
    op.drop_table('sign_in_failure')
