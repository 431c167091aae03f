"""indexes for the pages' read paths

Revision ID: d7f6a2b3c4e7
Revises: a4c3d9e0f1b4
Create Date: 2026-12-05 02:15:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd7f6a2b3c4e7'
down_revision = 'a4c3d9e0f1b4'
branch_labels = None
depends_on = None


def upgrade():
    # The physician's unsigned queue: the few complete notes among years of signed ones.
    op.create_index('ix_session_note_status', 'session_note', ['status'])
    # Worklists: the few sessions waiting at the checklist or in recovery among years of sessions.
    op.create_index('ix_infusion_session_status', 'infusion_session', ['status'])


def downgrade():
    op.drop_index('ix_infusion_session_status', table_name='infusion_session')
    op.drop_index('ix_session_note_status', table_name='session_note')
