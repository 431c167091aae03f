"""clinic closures and safe series booking

Revision ID: f3b2c8d9e0a3
Revises: e2f1e7a0b0c2
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


# revision identifiers, used by Alembic.
revision = 'f3b2c8d9e0a3'
down_revision = 'e2f1e7a0b0c2'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
