"""patients' MRN in lower case, indexed, so a search or a duplicate check finds an MRN typed in any case by index

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-12-05 14:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b8c9d0e1f2a3'
down_revision = 'a7b8c9d0e1f2'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases (SQLite too: no table copy of patient, which others reference).
    op.add_column('patient', sa.Column('mrn_key', sa.String(length=32), server_default='', nullable=False))
    # MRNs are letters, digits and dashes (the form's rule): SQL's lower() folds them as Python's does.
    op.execute("UPDATE patient SET mrn_key = lower(trim(mrn))")
    op.create_index(op.f('ix_patient_mrn_key'), 'patient', ['mrn_key'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_patient_mrn_key'), table_name='patient')
    op.drop_column('patient', 'mrn_key')
