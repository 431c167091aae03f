"""patient search keys: accent- and case-insensitive names

Revision ID: a4c3d9e0f1b4
Revises: f3b2c8d9e0a3
Create Date: 2026-12-05 00:00:00

"""
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a4c3d9e0f1b4'
down_revision = 'f3b2c8d9e0a3'
branch_labels = None
depends_on = None

patient = sa.table(
    'patient', sa.column('id', sa.Integer), sa.column('legal_name', sa.String), sa.column('preferred_name', sa.String),
    sa.column('phone', sa.String), sa.column('search_name', sa.String), sa.column('family_key', sa.String),
    sa.column('given_key', sa.String), sa.column('phone_key', sa.String))


# A copy of opsmgr/rules/identity.py as of this revision (a migration never imports the app).
def _fold(text):
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def _parts(word):
    return "".join(char if char.isalnum() else " " for char in word).split()


def _name_words(text):
    return [joined for joined in ("".join(_parts(word)) for word in _fold(text).split()) if joined]


def _search_key(*names, limit=250):
    words = []
    for word in _fold(" ".join(names)).split():
        parts = _parts(word)
        for candidate in ["".join(parts), *(parts if len(parts) > 1 else ())]:
            if candidate and candidate not in words:
                words.append(candidate)
    key = ""
    for word in words:
        if len(key) + len(word) + 1 > limit:
            break
        key = f"{key} {word}" if key else word
    return key


def _family_and_given(legal_name):
    text = _fold(legal_name)
    if "," in text:
        family, given = text.split(",", 1)
    else:
        *first, last = text.split() or [""]
        family, given = last, " ".join(first)
    return " ".join(_name_words(family)), " ".join(_name_words(given))


def _phone_key(phone):
    digits = "".join(char for char in phone or "" if char.isdigit() and char.isascii())
    return digits[-10:] if len(digits) >= 7 else ""


def _rows():
    return op.get_bind().execute(
        sa.select(patient.c.id, patient.c.legal_name, patient.c.preferred_name, patient.c.phone)).all()


def upgrade():
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('family_key', sa.String(length=120), server_default='', nullable=False))
        batch_op.add_column(sa.Column('given_key', sa.String(length=120), server_default='', nullable=False))
        batch_op.add_column(sa.Column('phone_key', sa.String(length=10), server_default='', nullable=False))
        batch_op.create_index('ix_patient_family_given', ['family_key', 'given_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_phone_key'), ['phone_key'], unique=False)
    bind = op.get_bind()
    for row in _rows():
        family, given = _family_and_given(row.legal_name)
        bind.execute(patient.update().where(patient.c.id == row.id).values(
            search_name=_search_key(row.legal_name, row.preferred_name or ""), family_key=family[:120],
            given_key=given[:120], phone_key=_phone_key(row.phone)))


def downgrade():
    bind = op.get_bind()
    for row in _rows():
        bind.execute(patient.update().where(patient.c.id == row.id).values(
            search_name=f"{row.legal_name} {row.preferred_name or ''}".strip().lower()))
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_phone_key'))
        batch_op.drop_index('ix_patient_family_given')
        batch_op.drop_column('phone_key')
        batch_op.drop_column('given_key')
        batch_op.drop_column('family_key')
