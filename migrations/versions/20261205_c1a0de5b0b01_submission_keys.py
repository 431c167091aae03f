"""submission keys: one action per click

Revision ID: c1a0de5b0b01
Revises: 8e20727ae55a
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'c1a0de5b0b01'
down_revision = '8e20727ae55a'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
