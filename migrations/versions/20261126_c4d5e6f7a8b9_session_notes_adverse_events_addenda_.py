"""session notes, adverse events, addenda; signed sessions locked by triggers

Revision ID: c4d5e6f7a8b9
Revises: b7c1d2e3f4a5
Create Date: 2026-11-26 17:14:39.266535

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d5e6f7a8b9'
down_revision = 'b7c1d2e3f4a5'
branch_labels = None
depends_on = None

# A signed session is frozen in the database itself: no row of its aggregate may be inserted,
# changed or deleted, whatever the application does (the ORM guard in opsmgr.notes.lock refuses
# first, with a message; these catch Core statements and raw SQL). Listed as (table, column
# holding the session id). Keep in step with opsmgr.sessions.record.PARTS.
LOCKED = [
    ("checklist_response", "session_id"), ("finding_override", "session_id"), ("dose_record", "session_id"),
    ("controlled_substance_entry", "session_id"), ("vital_sign", "session_id"), ("in_chair_alert", "session_id"),
    ("infusion_event", "session_id"), ("discharge_record", "session_id"), ("adverse_event", "session_id"),
    ("infusion_session", "id"),
]
SIGNED = "SELECT 1 FROM session_note WHERE session_note.signed_at IS NOT NULL AND session_note.session_id"
MESSAGE = "opsmgr: this session is signed and locked; add an addendum instead"


def _sqlite_triggers():
    statements = []
    for table, column in LOCKED:
        checks = [("update", f"IN (OLD.{column}, NEW.{column})"), ("delete", f"= OLD.{column}")]
        if table != "infusion_session":
            checks.append(("insert", f"= NEW.{column}"))
        for event, match in checks:
            statements.append(
                f"CREATE TRIGGER {table}_signed_no_{event} BEFORE {event.upper()} ON {table} "
                f"WHEN EXISTS ({SIGNED} {match}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    statements += [
        f"CREATE TRIGGER session_note_signed_no_update BEFORE UPDATE ON session_note WHEN OLD.signed_at IS NOT NULL "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
        f"CREATE TRIGGER session_note_signed_no_delete BEFORE DELETE ON session_note WHEN OLD.signed_at IS NOT NULL "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
        "CREATE TRIGGER note_addendum_no_update BEFORE UPDATE ON note_addendum "
        "BEGIN SELECT RAISE(ABORT, 'opsmgr: addenda are append-only'); END",
        "CREATE TRIGGER note_addendum_no_delete BEFORE DELETE ON note_addendum "
        "BEGIN SELECT RAISE(ABORT, 'opsmgr: addenda are append-only'); END",
        "CREATE TRIGGER note_addendum_only_when_signed BEFORE INSERT ON note_addendum "
        "WHEN NOT EXISTS (SELECT 1 FROM session_note WHERE id = NEW.note_id AND signed_at IS NOT NULL) "
        "BEGIN SELECT RAISE(ABORT, 'opsmgr: addenda are for signed notes'); END",
    ]
    return statements


def _sqlite_drops():
    names = [f"{table}_signed_no_{event}" for table, _ in LOCKED for event in ("update", "delete", "insert")
             if not (table == "infusion_session" and event == "insert")]
    names += ["session_note_signed_no_update", "session_note_signed_no_delete", "note_addendum_no_update",
              "note_addendum_no_delete", "note_addendum_only_when_signed"]
    return [f"DROP TRIGGER {name}" for name in names]


PG_FUNCTIONS = [
    # The session row is share-locked first, so a write racing a signature waits for it and then
    # sees it (the signer holds the row FOR UPDATE while it reads and hashes the aggregate).
    f"""CREATE FUNCTION opsmgr_refuse_if_signed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE old_id bigint; new_id bigint;
    BEGIN
      IF TG_OP <> 'INSERT' THEN old_id := (to_jsonb(OLD) ->> TG_ARGV[0])::bigint; END IF;
      IF TG_OP <> 'DELETE' THEN new_id := (to_jsonb(NEW) ->> TG_ARGV[0])::bigint; END IF;
      IF TG_TABLE_NAME <> 'infusion_session' THEN
        PERFORM 1 FROM infusion_session WHERE id IN (old_id, new_id) FOR KEY SHARE;
      END IF;
      IF EXISTS ({SIGNED} IN (old_id, new_id)) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$""",
    f"""CREATE FUNCTION opsmgr_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM session_note WHERE signed_at IS NOT NULL) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION opsmgr_note_signed_lock() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$""",
    """CREATE FUNCTION opsmgr_addendum_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM session_note WHERE id = NEW.note_id AND signed_at IS NOT NULL) THEN
          RAISE EXCEPTION 'opsmgr: addenda are for signed notes' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'opsmgr: addenda are append-only' USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
]


def _pg_triggers():
    statements = list(PG_FUNCTIONS)
    for table, column in LOCKED:
        statements.append(f"CREATE TRIGGER {table}_signed_lock BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                          f"FOR EACH ROW EXECUTE FUNCTION opsmgr_refuse_if_signed('{column}')")
        statements.append(f"CREATE TRIGGER {table}_signed_no_truncate BEFORE TRUNCATE ON {table} "
                          "FOR EACH STATEMENT EXECUTE FUNCTION opsmgr_refuse_truncate()")
    statements += [
        "CREATE TRIGGER session_note_signed_lock BEFORE UPDATE OR DELETE ON session_note "
        "FOR EACH ROW EXECUTE FUNCTION opsmgr_note_signed_lock()",
        "CREATE TRIGGER session_note_signed_no_truncate BEFORE TRUNCATE ON session_note "
        "FOR EACH STATEMENT EXECUTE FUNCTION opsmgr_refuse_truncate()",
        "CREATE TRIGGER note_addendum_append_only BEFORE INSERT OR UPDATE OR DELETE ON note_addendum "
        "FOR EACH ROW EXECUTE FUNCTION opsmgr_addendum_guard()",
        "CREATE TRIGGER note_addendum_no_truncate BEFORE TRUNCATE ON note_addendum "
        "FOR EACH STATEMENT EXECUTE FUNCTION opsmgr_refuse_truncate()",
    ]
    return statements


def _pg_drops():
    drops = []
    for table, _ in LOCKED:
        drops += [f"DROP TRIGGER {table}_signed_lock ON {table}", f"DROP TRIGGER {table}_signed_no_truncate ON {table}"]
    drops += ["DROP TRIGGER session_note_signed_lock ON session_note",
              "DROP TRIGGER session_note_signed_no_truncate ON session_note",
              "DROP TRIGGER note_addendum_append_only ON note_addendum",
              "DROP TRIGGER note_addendum_no_truncate ON note_addendum"]
    drops += [f"DROP FUNCTION {name}()" for name in ("opsmgr_refuse_if_signed", "opsmgr_refuse_truncate",
                                                     "opsmgr_note_signed_lock", "opsmgr_addendum_guard")]
    return drops


TRIGGERS = {"sqlite": _sqlite_triggers, "postgresql": _pg_triggers}
DROPS = {"sqlite": _sqlite_drops, "postgresql": _pg_drops}


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('session_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('mindset', sa.Text(), nullable=False),
    sa.Column('intention', sa.Text(), nullable=False),
    sa.Column('expectations', sa.Text(), nullable=False),
    sa.Column('worries', sa.Text(), nullable=False),
    sa.Column('music', sa.Text(), nullable=False),
    sa.Column('eye_mask', sa.Boolean(), nullable=True),
    sa.Column('lighting', sa.String(length=300), nullable=False),
    sa.Column('room', sa.String(length=300), nullable=False),
    sa.Column('support_person', sa.Text(), nullable=False),
    sa.Column('setting_changes', sa.Text(), nullable=False),
    sa.Column('copied_from_session_id', sa.Integer(), nullable=True),
    sa.Column('dissociation_clinician', sa.Integer(), nullable=True),
    sa.Column('dissociation_patient', sa.Integer(), nullable=True),
    sa.Column('emotional_tone', sa.Text(), nullable=False),
    sa.Column('themes', sa.Text(), nullable=False),
    sa.Column('perceptual_effects', sa.Text(), nullable=False),
    sa.Column('quotes', sa.Text(), nullable=False),
    sa.Column('ending', sa.Text(), nullable=False),
    sa.Column('post_session_state', sa.Text(), nullable=False),
    sa.Column('integration_plan', sa.Text(), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.Column('signed_at', sa.DateTime(), nullable=True),
    sa.Column('signed_by_id', sa.Integer(), nullable=True),
    sa.Column('signer_name', sa.String(length=120), nullable=False),
    sa.Column('signer_credentials', sa.String(length=40), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('signed_content', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("(status = 'signed') = (signed_at IS NOT NULL)", name=op.f('ck_session_note_signed_status_matches')),
    sa.CheckConstraint("status IN ('draft', 'complete', 'signed')", name=op.f('ck_session_note_status_known')),
    sa.CheckConstraint('dissociation_clinician BETWEEN 0 AND 10', name=op.f('ck_session_note_dissociation_clinician_range')),
    sa.CheckConstraint('dissociation_patient BETWEEN 0 AND 10', name=op.f('ck_session_note_dissociation_patient_range')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['staff_user.id'], name=op.f('fk_session_note_completed_by_id_staff_user')),
    sa.ForeignKeyConstraint(['copied_from_session_id'], ['infusion_session.id'], name=op.f('fk_session_note_copied_from_session_id_infusion_session')),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_user.id'], name=op.f('fk_session_note_created_by_id_staff_user')),
    sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'], name=op.f('fk_session_note_session_id_infusion_session')),
    sa.ForeignKeyConstraint(['signed_by_id'], ['staff_user.id'], name=op.f('fk_session_note_signed_by_id_staff_user')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['staff_user.id'], name=op.f('fk_session_note_updated_by_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_note')),
    sa.UniqueConstraint('session_id', name=op.f('uq_session_note_session_id'))
    )
    op.create_table('note_addendum',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('note_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('author_name', sa.String(length=120), nullable=False),
    sa.Column('author_credentials', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('event_at', sa.DateTime(), nullable=True),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('length(reason) > 0 AND length(body) > 0', name=op.f('ck_note_addendum_reason_and_text_given')),
    sa.ForeignKeyConstraint(['author_id'], ['staff_user.id'], name=op.f('fk_note_addendum_author_id_staff_user')),
    sa.ForeignKeyConstraint(['note_id'], ['session_note.id'], name=op.f('fk_note_addendum_note_id_session_note')),
    sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'], name=op.f('fk_note_addendum_session_id_infusion_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note_addendum'))
    )
    with op.batch_alter_table('note_addendum', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_addendum_note_id'), ['note_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_note_addendum_session_id'), ['session_id'], unique=False)

    op.create_table('adverse_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('other_kind', sa.String(length=120), nullable=False),
    sa.Column('onset_at', sa.DateTime(), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('intervention', sa.Text(), nullable=False),
    sa.Column('drug_given', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('nausea', 'vomiting', 'anxiety_agitation', 'hypertension', 'headache', 'dizziness', 'dysphoria', 'emergence_reaction', 'other')", name=op.f('ck_adverse_event_kind_known')),
    sa.CheckConstraint("outcome IN ('resolved', 'resolving', 'ongoing_at_discharge', 'referred')", name=op.f('ck_adverse_event_outcome_known')),
    sa.CheckConstraint("severity IN ('mild', 'moderate', 'severe')", name=op.f('ck_adverse_event_severity_known')),
    sa.ForeignKeyConstraint(['alert_id'], ['in_chair_alert.id'], name=op.f('fk_adverse_event_alert_id_in_chair_alert')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staff_user.id'], name=op.f('fk_adverse_event_recorded_by_id_staff_user')),
    sa.ForeignKeyConstraint(['session_id'], ['infusion_session.id'], name=op.f('fk_adverse_event_session_id_infusion_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_event'))
    )
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adverse_event_session_id'), ['session_id'], unique=False)

    # ### end Alembic commands ###
    for statement in TRIGGERS[op.get_bind().dialect.name]():
        op.execute(statement)


def downgrade():
    for statement in DROPS[op.get_bind().dialect.name]():
        op.execute(statement)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adverse_event_session_id'))

    op.drop_table('adverse_event')
    with op.batch_alter_table('note_addendum', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_addendum_session_id'))
        batch_op.drop_index(batch_op.f('ix_note_addendum_note_id'))

    op.drop_table('note_addendum')
    op.drop_table('session_note')
    # ### end Alembic commands ###
