"""no escort today: the arrangement for the ride home

Revision ID: 5937965dbd57
Revises: 968f76900156
Create Date: 2026-12-04 21:06:07.172515

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5937965dbd57'
down_revision = '968f76900156'
branch_labels = None
depends_on = None

# Plain ALTER TABLE, not batch_alter_table: on SQLite a batch copy of checklist_response would drop its
# signed-session lock triggers (checklist_response_signed_no_*). A nullable column without a key needs no copy.


def upgrade():
    op.add_column('checklist_response', sa.Column('escort_arrangement', sa.Text(), nullable=True))


def downgrade():
    op.drop_column('checklist_response', 'escort_arrangement')
