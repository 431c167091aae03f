"""follow-ups, reminder templates, session confirmations and SMS opt-out

Revision ID: e8a7b3c4d5f8
Revises: c6e5f1a2b3d6
Create Date: 2026-12-05 02:50:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e8a7b3c4d5f8'
down_revision = 'c6e5f1a2b3d6'
branch_labels = None
depends_on = None

STATUSES = ("open", "escalated", "done", "cancelled", "expired")
KINDS = ("checkin_call", "first_session_call", "phq9_request", "induction_review", "booster_review", "rems_form",
         "unsigned_note")


def upgrade():
    op.create_table(
        'follow_up',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=True),
        sa.Column('series_id', sa.Integer(), nullable=True),
        sa.Column('score_id', sa.Integer(), nullable=True),
        sa.Column('for_role', sa.String(length=12), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('overdue_at', sa.DateTime(), nullable=True),
        sa.Column('remind_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('misses', sa.Integer(), nullable=False),
        sa.Column('escalated_to_id', sa.Integer(), nullable=True),
        sa.Column('escalation_note', sa.String(length=500), nullable=False),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('rems_submitted_on', sa.Date(), nullable=True),
        sa.Column('rems_method', sa.String(length=10), nullable=True),
        sa.Column('cancel_reason', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('closed_by_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name=op.f('ck_follow_up_status_known')),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name=op.f('ck_follow_up_kind_known')),
        sa.CheckConstraint("for_role IN ('coordinator', 'physician')", name=op.f('ck_follow_up_role_known')),
        sa.CheckConstraint('misses >= 0', name=op.f('ck_follow_up_misses_not_negative')),
        sa.CheckConstraint("(status = 'done') = (closed_at IS NOT NULL)", name=op.f('ck_follow_up_closed_when_done')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_follow_up_patient_id_patient')),
        sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'],
                                name=op.f('fk_follow_up_session_id_infusion_session')),
        sa.ForeignKeyConstraint(['series_id'], ['infusion_series.id'],
                                name=op.f('fk_follow_up_series_id_infusion_series')),
        sa.ForeignKeyConstraint(['escalated_to_id'], ['staff_user.id'],
                                name=op.f('fk_follow_up_escalated_to_id_staff_user')),
        sa.ForeignKeyConstraint(['closed_by_id'], ['staff_user.id'], name=op.f('fk_follow_up_closed_by_id_staff_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up')),
        sa.UniqueConstraint('key', name=op.f('uq_follow_up_key')),
    )
    op.create_index('ix_follow_up_status_due', 'follow_up', ['status', 'due_at'])
    op.create_index(op.f('ix_follow_up_patient_id'), 'follow_up', ['patient_id'])
    op.create_table(
        'message_template',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['updated_by_id'], ['staff_user.id'],
                                name=op.f('fk_message_template_updated_by_id_staff_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_template')),
        sa.UniqueConstraint('name', name=op.f('uq_message_template_name')),
    )
    op.create_table(
        'session_confirmation',
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(), nullable=False),
        sa.Column('via', sa.String(length=10), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'],
                                name=op.f('fk_session_confirmation_session_id_infusion_session')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['staff_user.id'],
                                name=op.f('fk_session_confirmation_recorded_by_id_staff_user')),
        sa.PrimaryKeyConstraint('session_id', name=op.f('pk_session_confirmation')),
    )
    # A plain ADD COLUMN (no table rebuild), so the patient table keeps everything it has.
    op.add_column('patient', sa.Column('sms_opted_out_at', sa.DateTime(), nullable=True))


def downgrade():
    # In place (SQLite 3.35+ drops a column without rebuilding the table, which its references forbid).
    op.drop_column('patient', 'sms_opted_out_at')
    op.drop_table('session_confirmation')
    op.drop_table('message_template')
    op.drop_index(op.f('ix_follow_up_patient_id'), table_name='follow_up')
    op.drop_index('ix_follow_up_status_due', table_name='follow_up')
    op.drop_table('follow_up')
