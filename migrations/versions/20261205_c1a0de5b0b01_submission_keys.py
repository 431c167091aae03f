"""submission keys: one action per click

Revision ID: c1a0de5b0b01
Revises: 8e20727ae55a
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c1a0de5b0b01'
down_revision = '8e20727ae55a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_session_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('location', sa.String(length=2000), nullable=True),
    sa.Column('flashes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['staff_session_id'], ['staff_session.id'],
                            name=op.f('fk_submission_staff_session_id_staff_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission')),
    sa.UniqueConstraint('staff_session_id', 'key', name=op.f('uq_submission_staff_session_id'))
    )


def downgrade():
    op.drop_table('submission')
