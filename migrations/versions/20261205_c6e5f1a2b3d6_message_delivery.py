"""message delivery: channel, recipient, rendered body, provider id; cancelled and expired

Revision ID: c6e5f1a2b3d6
Revises: b5d4e0f1a2c5
Create Date: 2026-12-05 02:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c6e5f1a2b3d6'
down_revision = 'b5d4e0f1a2c5'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed')"
NEW_STATUSES = "status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'expired')"
OLD_SENT_AT = "(status = 'sent') = (sent_at IS NOT NULL)"
NEW_SENT_AT = "status NOT IN ('sent', 'delivered') OR sent_at IS NOT NULL"


def upgrade():
    # outbox_message has no lock triggers, so SQLite's batch copy loses nothing.
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('recipient', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('subject', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('patient_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('possibly_duplicate', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('provider_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_reason', sa.String(length=200), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_patient_id_patient'), 'patient',
                                    ['patient_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_session_id_infusion_session'),
                                    'infusion_session', ['session_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_outbox_message_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_provider_id'), ['provider_id'], unique=False)
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_status_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_sent_at_when_sent'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_status_known'), NEW_STATUSES)
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_sent_at_when_sent'), NEW_SENT_AT)
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_channel_known'),
                                         "channel IN ('email', 'sms', 'staff')")
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_closed_at_when_closed'),
                                         "(status IN ('cancelled', 'expired')) = (closed_at IS NOT NULL)")


def downgrade():
    # Rows in the new statuses have no place in the old table: a delivered one was sent; the others
    # were never sent and are dropped with their columns.
    op.execute("UPDATE outbox_message SET status = 'sent' WHERE status = 'delivered'")
    op.execute("DELETE FROM outbox_message WHERE status IN ('cancelled', 'expired')")
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_closed_at_when_closed'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_channel_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_sent_at_when_sent'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_status_known'), OLD_STATUSES)
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_sent_at_when_sent'), OLD_SENT_AT)
        batch_op.drop_index(batch_op.f('ix_outbox_message_provider_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_session_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_patient_id'))
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_session_id_infusion_session'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_patient_id_patient'), type_='foreignkey')
        batch_op.drop_column('closed_reason')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('provider_id')
        batch_op.drop_column('possibly_duplicate')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('session_id')
        batch_op.drop_column('patient_id')
        batch_op.drop_column('body')
        batch_op.drop_column('subject')
        batch_op.drop_column('recipient')
        batch_op.drop_column('channel')
