"""scores: one home for PHQ-9 and GAD-7, taken at the checklist or by phone

Revision ID: b5d4e0f1a2c5
Revises: d7f6a2b3c4e7
Create Date: 2026-12-05 02:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b5d4e0f1a2c5'
down_revision = 'd7f6a2b3c4e7'
branch_labels = None
depends_on = None

# Every checklist's PHQ-9 and GAD-7 answers move to the new score table (taken at the checklist's
# saved time, by whoever saved it) and their three columns leave checklist_response. The columns are
# dropped in place (ALTER TABLE ... DROP COLUMN), never by a SQLite batch copy, which would drop the
# checklist's signed-session lock triggers (c4d5e6f7a8b9). A checklist's score rows are part of its
# signed record, so score rows with a session get the same lock triggers. The bands are frozen here
# as opsmgr.rules.scales had them, so this migration never changes with the app.
SIGNED = "SELECT 1 FROM session_note WHERE session_note.signed_at IS NOT NULL AND session_note.session_id"
MESSAGE = "opsmgr: this session is signed and locked; add an addendum instead"
SQLITE_CHECKS = (("update", "IN (OLD.session_id, NEW.session_id)"), ("delete", "= OLD.session_id"),
                 ("insert", "= NEW.session_id"))
PHQ9_BANDS = ((4, "minimal"), (9, "mild"), (14, "moderate"), (19, "moderately severe"), (27, "severe"))
GAD7_BANDS = ((4, "minimal"), (9, "mild"), (14, "moderate"), (21, "severe"))
#: instrument -> (item column, item count, bands)
SCALES = {"PHQ-9": ("phq9_items", 9, PHQ9_BANDS), "GAD-7": ("gad7_items", 7, GAD7_BANDS)}
CHUNK = 1000

checklist = sa.table(
    "checklist_response", sa.column("id", sa.Integer), sa.column("session_id", sa.Integer),
    sa.column("phq9_items", sa.JSON), sa.column("phq9_difficulty", sa.Integer), sa.column("gad7_items", sa.JSON),
    sa.column("updated_at", sa.DateTime), sa.column("updated_by_id", sa.Integer))
session = sa.table("infusion_session", sa.column("id", sa.Integer), sa.column("patient_id", sa.Integer))
score = sa.table(
    "score", sa.column("id", sa.Integer), sa.column("patient_id", sa.Integer), sa.column("session_id", sa.Integer),
    sa.column("instrument", sa.String), sa.column("items", sa.JSON), sa.column("difficulty", sa.Integer),
    sa.column("total", sa.Integer), sa.column("band", sa.String), sa.column("taken_at", sa.DateTime),
    sa.column("source", sa.String), sa.column("recorded_by_id", sa.Integer), sa.column("recorded_at", sa.DateTime))


def _lock_score():
    if op.get_bind().dialect.name == "sqlite":
        for event, match in SQLITE_CHECKS:
            op.execute(f"CREATE TRIGGER score_signed_no_{event} BEFORE {event.upper()} ON score "
                       f"WHEN EXISTS ({SIGNED} {match}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        return
    op.execute("CREATE TRIGGER score_signed_lock BEFORE INSERT OR UPDATE OR DELETE ON score "
               "FOR EACH ROW EXECUTE FUNCTION opsmgr_refuse_if_signed('session_id')")
    op.execute("CREATE TRIGGER score_signed_no_truncate BEFORE TRUNCATE ON score "
               "FOR EACH STATEMENT EXECUTE FUNCTION opsmgr_refuse_truncate()")


def _scored(items, bands):
    if items is None or None in items:
        return None, None
    total = sum(items)
    return total, next(band for highest, band in bands if total <= highest)


def _score_rows(row):
    """The score rows of one checklist row: one per scale with any answer."""
    rows = []
    for instrument, (column, count, bands) in SCALES.items():
        items = getattr(row, column)
        difficulty = row.phq9_difficulty if instrument == "PHQ-9" else None
        if items is None and difficulty is None:
            continue
        total, band = _scored(items, bands)
        rows.append({"patient_id": row.patient_id, "session_id": row.session_id, "instrument": instrument,
                     "items": list(items) if items is not None else [None] * count, "difficulty": difficulty,
                     "total": total, "band": band, "taken_at": row.updated_at, "source": "checklist",
                     "recorded_by_id": row.updated_by_id, "recorded_at": row.updated_at})
    return rows


def _copy_checklist_scores():
    bind = op.get_bind()
    query = (sa.select(checklist.c.id, checklist.c.session_id, checklist.c.phq9_items, checklist.c.phq9_difficulty,
                       checklist.c.gad7_items, checklist.c.updated_at, checklist.c.updated_by_id,
                       session.c.patient_id)
             .join(session, session.c.id == checklist.c.session_id).order_by(checklist.c.id))
    rows = []
    for row in bind.execute(query):
        rows += _score_rows(row)
        if len(rows) >= CHUNK:
            bind.execute(score.insert(), rows)
            rows = []
    if rows:
        bind.execute(score.insert(), rows)


def upgrade():
    op.create_table('score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('instrument', sa.String(length=8), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('difficulty', sa.Integer(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('band', sa.String(length=20), nullable=True),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('entered_in_error_at', sa.DateTime(), nullable=True),
    sa.Column('entered_in_error_by_id', sa.Integer(), nullable=True),
    sa.Column('entered_in_error_reason', sa.String(length=300), nullable=True),
    sa.CheckConstraint("instrument IN ('PHQ-9', 'GAD-7')", name=op.f('ck_score_instrument_known')),
    sa.CheckConstraint("source IN ('checklist', 'phone')", name=op.f('ck_score_source_known')),
    sa.CheckConstraint("(session_id IS NOT NULL) = (source = 'checklist')",
                       name=op.f('ck_score_session_with_checklist')),
    sa.CheckConstraint("difficulty IS NULL OR (instrument = 'PHQ-9' AND difficulty BETWEEN 0 AND 3)",
                       name=op.f('ck_score_difficulty_phq9')),
    sa.CheckConstraint('total IS NULL OR total BETWEEN 0 AND 27', name=op.f('ck_score_total_in_range')),
    sa.CheckConstraint('(total IS NULL) = (band IS NULL)', name=op.f('ck_score_band_with_total')),
    sa.CheckConstraint('(entered_in_error_at IS NULL) = (entered_in_error_reason IS NULL)',
                       name=op.f('ck_score_in_error_has_reason')),
    sa.ForeignKeyConstraint(['entered_in_error_by_id'], ['staff_user.id'],
                            name=op.f('fk_score_entered_in_error_by_id_staff_user')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_score_patient_id_patient')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staff_user.id'], name=op.f('fk_score_recorded_by_id_staff_user')),
    sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'],
                            name=op.f('fk_score_session_id_infusion_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_score')),
    sa.UniqueConstraint('session_id', 'instrument', name='uq_score_session_instrument')
    )
    op.create_index('ix_score_patient_id_taken_at', 'score', ['patient_id', 'taken_at'], unique=False)
    _copy_checklist_scores()
    _lock_score()
    for column in ('phq9_items', 'phq9_difficulty', 'gad7_items'):
        op.drop_column('checklist_response', column)
    # A PHQ-9 taken by phone raises its item-9 task with no session: the task names the score.
    with op.batch_alter_table('physician_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('score_id', sa.Integer(), nullable=True))
        batch_op.alter_column('session_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_physician_task_score_id_score'), 'score', ['score_id'], ['id'])
        batch_op.create_unique_constraint('uq_physician_task_score_code', ['score_id', 'code'])
        batch_op.create_check_constraint(batch_op.f('ck_physician_task_has_origin'),
                                         'session_id IS NOT NULL OR score_id IS NOT NULL')


def _restore_checklist_columns():
    """Put the checklist scores back in checklist_response; signed rows too (their lock is lifted meanwhile)."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER checklist_response_signed_no_update")
    else:
        op.execute("ALTER TABLE checklist_response DISABLE TRIGGER checklist_response_signed_lock")
    found = bind.execute(sa.select(score.c.session_id, score.c.instrument, score.c["items"], score.c.difficulty)
                         .where(score.c.source == 'checklist').order_by(score.c.id)).all()
    values = {}
    for row in found:
        answered = None if all(item is None for item in row.items) else list(row.items)
        if row.instrument == 'PHQ-9':
            values.setdefault(row.session_id, {}).update(phq9_items=answered, phq9_difficulty=row.difficulty)
        else:
            values.setdefault(row.session_id, {}).update(gad7_items=answered)
    statement = (checklist.update().where(checklist.c.session_id == sa.bindparam('key'))
                 .values(phq9_items=sa.bindparam('phq9_items'), phq9_difficulty=sa.bindparam('phq9_difficulty'),
                         gad7_items=sa.bindparam('gad7_items')))
    rows = [{"key": session_id, "phq9_items": None, "phq9_difficulty": None, "gad7_items": None, **answers}
            for session_id, answers in values.items()]
    for start in range(0, len(rows), CHUNK):
        bind.execute(statement, rows[start:start + CHUNK])
    if sqlite:
        event, match = SQLITE_CHECKS[0]
        op.execute(f"CREATE TRIGGER checklist_response_signed_no_{event} BEFORE {event.upper()} ON checklist_response "
                   f"WHEN EXISTS ({SIGNED} {match}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    else:
        op.execute("ALTER TABLE checklist_response ENABLE TRIGGER checklist_response_signed_lock")


def downgrade():
    # Tasks raised by a phone score have no session to go back to; they leave with the score table.
    op.execute("DELETE FROM physician_task WHERE session_id IS NULL")
    with op.batch_alter_table('physician_task', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_physician_task_has_origin'), type_='check')
        batch_op.drop_constraint('uq_physician_task_score_code', type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_physician_task_score_id_score'), type_='foreignkey')
        batch_op.alter_column('session_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('score_id')
    op.add_column('checklist_response', sa.Column('phq9_items', sa.JSON(), nullable=True))
    op.add_column('checklist_response', sa.Column('phq9_difficulty', sa.Integer(), nullable=True))
    op.add_column('checklist_response', sa.Column('gad7_items', sa.JSON(), nullable=True))
    _restore_checklist_columns()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER score_signed_lock ON score")
        op.execute("DROP TRIGGER score_signed_no_truncate ON score")
    op.drop_index('ix_score_patient_id_taken_at', table_name='score')
    op.drop_table('score')
