"""in-chair alerts indexed by acknowledgement, so the open ones are found among years of alerts

Revision ID: c9d0e1f2a3b4
Revises: b8c9d0e1f2a3
Create Date: 2026-12-05 14:50:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c9d0e1f2a3b4'
down_revision = 'b8c9d0e1f2a3'
branch_labels = None
depends_on = None


def upgrade():
    # Every physician's page counts the alerts not acknowledged (the navigation's badge) and the home lists
    # them with today's acknowledged ones: without an index both read every alert ever raised (4,000 at
    # 200,000 sessions, half a millisecond a page and growing).
    op.create_index(op.f('ix_in_chair_alert_acknowledged_at'), 'in_chair_alert', ['acknowledged_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_in_chair_alert_acknowledged_at'), table_name='in_chair_alert')
