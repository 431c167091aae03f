"""restricted records: care teams and audited break-glass

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-12-05 08:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e5f6a7b8c9d0'
down_revision = 'd4e5f6a7b8c9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'patient_restriction',
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('is_restricted', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.Column('changed_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_restriction_patient_id_patient')),
        sa.ForeignKeyConstraint(['changed_by_id'], ['staff_user.id'],
                                name=op.f('fk_patient_restriction_changed_by_id_staff_user')),
        sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient_restriction')),
    )
    op.create_table(
        'care_team_member',
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_care_team_member_patient_id_patient')),
        sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_care_team_member_user_id_staff_user')),
        sa.PrimaryKeyConstraint('patient_id', 'user_id', name=op.f('pk_care_team_member')),
    )
    op.create_index(op.f('ix_care_team_member_user_id'), 'care_team_member', ['user_id'])
    op.create_table(
        'break_glass_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('reviewed_at', sa.DateTime(), nullable=True),
        sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_break_glass_event_patient_id_patient')),
        sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_break_glass_event_user_id_staff_user')),
        sa.ForeignKeyConstraint(['reviewed_by_id'], ['staff_user.id'],
                                name=op.f('fk_break_glass_event_reviewed_by_id_staff_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_event')),
    )
    op.create_index(op.f('ix_break_glass_event_patient_id'), 'break_glass_event', ['patient_id'])
    op.create_index(op.f('ix_break_glass_event_user_id'), 'break_glass_event', ['user_id'])


def downgrade():
    op.drop_index(op.f('ix_break_glass_event_user_id'), table_name='break_glass_event')
    op.drop_index(op.f('ix_break_glass_event_patient_id'), table_name='break_glass_event')
    op.drop_table('break_glass_event')
    op.drop_index(op.f('ix_care_team_member_user_id'), table_name='care_team_member')
    op.drop_table('care_team_member')
    op.drop_table('patient_restriction')
