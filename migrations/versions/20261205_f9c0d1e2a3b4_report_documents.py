"""report documents: generated PDFs stored once with their SHA-256

Revision ID: f9c0d1e2a3b4
Revises: e8a7b3c4d5f8
Create Date: 2026-12-05 03:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f9c0d1e2a3b4'
down_revision = 'e8a7b3c4d5f8'
branch_labels = None
depends_on = None


KINDS = ("session", "series")


def upgrade():
    op.create_table(
        'report_document',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=True),
        sa.Column('series_id', sa.Integer(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('bytes', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name=op.f('ck_report_document_kind_known')),
        sa.CheckConstraint('length(sha256) = 64', name=op.f('ck_report_document_sha256_is_hex')),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_report_document_patient_id_patient')),
        sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'],
                                name=op.f('fk_report_document_session_id_infusion_session')),
        sa.ForeignKeyConstraint(['series_id'], ['infusion_series.id'],
                                name=op.f('fk_report_document_series_id_infusion_series')),
        sa.ForeignKeyConstraint(['created_by_id'], ['staff_user.id'],
                                name=op.f('fk_report_document_created_by_id_staff_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_document')),
        sa.UniqueConstraint('document_id', name=op.f('uq_report_document_document_id')),
        sa.UniqueConstraint('kind', 'session_id', name='uq_report_document_kind_session'),
    )
    op.create_index(op.f('ix_report_document_patient_id'), 'report_document', ['patient_id'])
    op.create_index(op.f('ix_report_document_series_id'), 'report_document', ['series_id'])


def downgrade():
    op.drop_index(op.f('ix_report_document_series_id'), table_name='report_document')
    op.drop_index(op.f('ix_report_document_patient_id'), table_name='report_document')
    op.drop_table('report_document')
