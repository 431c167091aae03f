"""entered in error: readings, weights, medications and contraindications marked with who, when and why

Revision ID: e2f1e7a0b0c2
Revises: c1a0de5b0b01
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'e2f1e7a0b0c2'
down_revision = 'c1a0de5b0b01'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
