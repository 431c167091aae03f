"""chair tablets: enrolled devices, a short PIN to resume a locked screen

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2026-12-05 05:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b2c3d4e5f6a7'
down_revision = 'a1b2c3d4e5f6'
branch_labels = None
depends_on = None


def upgrade():
    # New tables and a plain ADD COLUMN of nullable columns without constraints: native on SQLite, so
    # staff_user and staff_session are never copied (a tablet login's lock state lives in its own table).
    op.create_table('chair_tablet',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(), nullable=False),
    sa.Column('enrolled_by_id', sa.Integer(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enrolled_by_id'], ['staff_user.id'],
                            name=op.f('fk_chair_tablet_enrolled_by_id_staff_user')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['staff_user.id'],
                            name=op.f('fk_chair_tablet_revoked_by_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chair_tablet')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_chair_tablet_token_hash'))
    )
    op.create_table('tablet_session',
    sa.Column('staff_session_id', sa.Integer(), nullable=False),
    sa.Column('tablet_id', sa.Integer(), nullable=False),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.Column('failed_pin_count', sa.Integer(), nullable=False),
    sa.CheckConstraint('failed_pin_count >= 0', name=op.f('ck_tablet_session_failed_pin_count_positive')),
    sa.ForeignKeyConstraint(['staff_session_id'], ['staff_session.id'],
                            name=op.f('fk_tablet_session_staff_session_id_staff_session')),
    sa.ForeignKeyConstraint(['tablet_id'], ['chair_tablet.id'],
                            name=op.f('fk_tablet_session_tablet_id_chair_tablet')),
    sa.PrimaryKeyConstraint('staff_session_id', name=op.f('pk_tablet_session'))
    )
    op.create_index(op.f('ix_tablet_session_tablet_id'), 'tablet_session', ['tablet_id'], unique=False)
    op.add_column('staff_user', sa.Column('pin_hash', sa.String(length=255), nullable=True))
    op.add_column('staff_user', sa.Column('pin_changed_at', sa.DateTime(), nullable=True))


def downgrade():
    op.drop_index(op.f('ix_tablet_session_tablet_id'), table_name='tablet_session')
    op.drop_table('tablet_session')
    op.drop_table('chair_tablet')
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of staff_user would drop a table every other
    # table refers to, which foreign keys refuse once there are rows.
    op.drop_column('staff_user', 'pin_changed_at')
    op.drop_column('staff_user', 'pin_hash')
