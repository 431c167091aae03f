"""patient search keys: accent- and case-insensitive names

Revision ID: a4c3d9e0f1b4
Revises: f3b2c8d9e0a3
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'a4c3d9e0f1b4'
down_revision = 'f3b2c8d9e0a3'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
