"""series summaries: the physician's paragraph, who signed, and how many sessions a signed series summary covers

Revision ID: a1b2c3d4e5f6
Revises: f9c0d1e2a3b4
Create Date: 2026-12-05 05:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a1b2c3d4e5f6'
down_revision = 'f9c0d1e2a3b4'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN and a unique index: both native on SQLite, so the stored PDFs are never copied.
    op.add_column('report_document', sa.Column('session_count', sa.Integer(), nullable=True))
    op.add_column('report_document', sa.Column('summary_text', sa.Text(), nullable=True))
    op.add_column('report_document', sa.Column('signer', sa.String(length=200), nullable=True))
    op.create_index('ix_report_document_series_count', 'report_document', ['kind', 'series_id', 'session_count'],
                    unique=True)


def downgrade():
    op.drop_index('ix_report_document_series_count', table_name='report_document')
    op.drop_column('report_document', 'signer')
    op.drop_column('report_document', 'summary_text')
    op.drop_column('report_document', 'session_count')
