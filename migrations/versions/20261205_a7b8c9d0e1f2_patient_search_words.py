"""patients' search words, one row each, so a search finds a name by any word's prefix through an index

Revision ID: a7b8c9d0e1f2
Revises: f6a7b8c9d0e1
Create Date: 2026-12-05 13:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a7b8c9d0e1f2'
down_revision = 'f6a7b8c9d0e1'
branch_labels = None
depends_on = None

patient = sa.table('patient', sa.column('id', sa.Integer), sa.column('search_name', sa.String))


def upgrade():
    word = sa.String(length=250).with_variant(sa.String(length=250, collation='C'), 'postgresql')
    words = op.create_table(
        'patient_search_word',
        sa.Column('word', word, nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_search_word_patient_id_patient')),
        sa.PrimaryKeyConstraint('word', 'patient_id', name=op.f('pk_patient_search_word')),
    )
    op.create_index(op.f('ix_patient_search_word_patient_id'), 'patient_search_word', ['patient_id'], unique=False)
    # Every patient's words from the search key the patient already has (identity.search_key).
    connection = op.get_bind()
    rows = connection.execute(sa.select(patient.c.id, patient.c.search_name).order_by(patient.c.id))
    while batch := rows.fetchmany(5000):
        values = [{'word': word, 'patient_id': row.id}
                  for row in batch for word in dict.fromkeys((row.search_name or '').split())]
        if values:
            connection.execute(sa.insert(words), values)


def downgrade():
    op.drop_index(op.f('ix_patient_search_word_patient_id'), table_name='patient_search_word')
    op.drop_table('patient_search_word')
