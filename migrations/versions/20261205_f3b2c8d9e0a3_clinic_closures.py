"""clinic closures and safe series booking

Revision ID: f3b2c8d9e0a3
Revises: e2f1e7a0b0c2
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3b2c8d9e0a3'
down_revision = 'e2f1e7a0b0c2'
branch_labels = None
depends_on = None

# The session's booking marks are added in place (ALTER TABLE ... ADD COLUMN), never by a SQLite batch
# copy, which would drop infusion_session's signed-session lock triggers; SQLite takes the foreign key
# on the added column. The downgrade's batch copy recreates those triggers.
COLUMNS = (("recorded_late_reason", "VARCHAR(300)"), ("same_day_reason", "VARCHAR(300)"),
           ("same_day_override_by_id", "INTEGER"))
SIGNED = "SELECT 1 FROM session_note WHERE session_note.signed_at IS NOT NULL AND session_note.session_id"
MESSAGE = "opsmgr: this session is signed and locked; add an addendum instead"
SQLITE_CHECKS = (("update", "IN (OLD.id, NEW.id)"), ("delete", "= OLD.id"))


def upgrade():
    op.create_table('clinic_closure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_user.id'], name=op.f('fk_clinic_closure_created_by_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinic_closure')),
    sa.UniqueConstraint('closed_on', name=op.f('uq_clinic_closure_closed_on'))
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column, type_ in COLUMNS:
        references = column.endswith("_by_id")
        if sqlite:
            clause = f" CONSTRAINT fk_infusion_session_{column}_staff_user REFERENCES staff_user (id)" \
                if references else ""
            op.execute(f"ALTER TABLE infusion_session ADD COLUMN {column} {type_}{clause}")
            continue
        op.add_column('infusion_session', sa.Column(column, sa.Integer() if references else sa.String(length=300),
                                                    nullable=True))
        if references:
            op.create_foreign_key(op.f(f'fk_infusion_session_{column}_staff_user'), 'infusion_session',
                                  'staff_user', [column], ['id'])


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('infusion_session', schema=None) as batch_op:
        if not sqlite:
            batch_op.drop_constraint(batch_op.f('fk_infusion_session_same_day_override_by_id_staff_user'),
                                     type_='foreignkey')
        for column, _ in reversed(COLUMNS):
            batch_op.drop_column(column)
    if sqlite:
        for event, match in SQLITE_CHECKS:
            op.execute(f"DROP TRIGGER IF EXISTS infusion_session_signed_no_{event}")
            op.execute(f"CREATE TRIGGER infusion_session_signed_no_{event} BEFORE {event.upper()} ON infusion_session "
                       f"WHEN EXISTS ({SIGNED} {match}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    op.drop_table('clinic_closure')
