"""entered in error: readings, weights, medications and contraindications marked with who, when and why

Revision ID: e2f1e7a0b0c2
Revises: c1a0de5b0b01
Create Date: 2026-12-05 00:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e2f1e7a0b0c2'
down_revision = 'c1a0de5b0b01'
branch_labels = None
depends_on = None

# Columns are added in place (ALTER TABLE ... ADD COLUMN), never by a SQLite batch copy: a copy of
# vital_sign would drop its signed-session lock triggers, and dropping the old table fails while
# in_chair_alert rows point at it. SQLite takes the foreign key and the check on the added column.
TABLES = ("vital_sign", "patient_weight", "patient_medication", "patient_contraindication")
#: Tables that did not keep who added an entry (filled from the audit trail below).
AUTHORLESS = {"patient_medication": "patient.medication_added",
              "patient_contraindication": "patient.contraindication_added"}
CHECK = "(entered_in_error_at IS NULL) = (entered_in_error_reason IS NULL)"


def _add(table, column, type_, *, references=None, check=None):
    if op.get_bind().dialect.name == "sqlite":
        clause = f" CONSTRAINT fk_{table}_{column}_staff_user REFERENCES staff_user (id)" if references else ""
        clause += f" CONSTRAINT ck_{table}_in_error_has_reason CHECK ({check})" if check else ""
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {type_}{clause}")
        return
    op.add_column(table, sa.Column(column, {"DATETIME": sa.DateTime(), "INTEGER": sa.Integer(),
                                            "VARCHAR(300)": sa.String(length=300)}[type_], nullable=True))
    if references:
        op.create_foreign_key(op.f(f"fk_{table}_{column}_staff_user"), table, "staff_user", [column], ["id"])
    if check:
        op.create_check_constraint(op.f(f"ck_{table}_in_error_has_reason"), table, check)


def upgrade():
    for table, action in AUTHORLESS.items():
        _add(table, "recorded_by_id", "INTEGER", references=True)
        op.execute(f"UPDATE {table} SET recorded_by_id = (SELECT audit_event.user_id FROM audit_event "
                   f"WHERE audit_event.action = '{action}' AND audit_event.object_type = '{table}' "
                   f"AND audit_event.object_id = CAST({table}.id AS VARCHAR(64)) ORDER BY audit_event.id LIMIT 1)")
    for table in TABLES:
        _add(table, "entered_in_error_at", "DATETIME")
        _add(table, "entered_in_error_by_id", "INTEGER", references=True)
        _add(table, "entered_in_error_reason", "VARCHAR(300)", check=CHECK)


# The lock triggers of vital_sign (c4d5e6f7a8b9), recreated after a SQLite batch copy in downgrade.
SIGNED = "SELECT 1 FROM session_note WHERE session_note.signed_at IS NOT NULL AND session_note.session_id"
MESSAGE = "opsmgr: this session is signed and locked; add an addendum instead"
SQLITE_CHECKS = (("update", "IN (OLD.session_id, NEW.session_id)"), ("delete", "= OLD.session_id"),
                 ("insert", "= NEW.session_id"))


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"ck_{table}_in_error_has_reason"), type_="check")
            if not sqlite:
                batch_op.drop_constraint(batch_op.f(f"fk_{table}_entered_in_error_by_id_staff_user"),
                                         type_="foreignkey")
                if table in AUTHORLESS:
                    batch_op.drop_constraint(batch_op.f(f"fk_{table}_recorded_by_id_staff_user"), type_="foreignkey")
            for column in ("entered_in_error_reason", "entered_in_error_by_id", "entered_in_error_at"):
                batch_op.drop_column(column)
            if table in AUTHORLESS:
                batch_op.drop_column("recorded_by_id")
    if sqlite:
        for event, match in SQLITE_CHECKS:
            op.execute(f"DROP TRIGGER IF EXISTS vital_sign_signed_no_{event}")
            op.execute(f"CREATE TRIGGER vital_sign_signed_no_{event} BEFORE {event.upper()} ON vital_sign "
                       f"WHEN EXISTS ({SIGNED} {match}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
