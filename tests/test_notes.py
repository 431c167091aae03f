"""Session notes: drafts that are never lost, conflicts, completion, signing that freezes the whole
session (service, ORM, database and crafted POSTs all refused), the canonical hash, and addenda."""
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, inspect, select, text, update
from sqlalchemy.exc import DatabaseError

from opsmgr.audit.models import AuditEvent
from opsmgr.core.errors import RecordLocked
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.infusion.models import DischargeAssessment, DoseOrder, InChairAlert, InfusionEvent
from opsmgr.notes import service as notes
from opsmgr.notes.models import AdverseEvent, NoteAddendum, SessionNote
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession
from tests.conftest import PASSWORD, FrozenClock, StaffClient, sign_in
from tests.factories import FACTORY_ACTOR, create_chairs, create_user
from tests.shared_world import world_sources, worlds_by_backend
from tests.test_infusion import (
    discharge,
    done,
    fields,
    make_session,
    record_cs,
    rows,
    start,
    url,
    vitals,
    wait,
)

COMPLETE = {"mindset": "Calm, a little tired.", "intention": "To feel like myself again.",
            "dissociation_clinician": "6", "dissociation_patient": "7", "eye_mask": "yes",
            "music": "Ambient piano, no lyrics", "post_session_state": "Oriented, steady gait.",
            "narrative": "Settled quickly; a wave of grief at 20 minutes that passed."}


def note_url(session_id, action=""):
    return f"/sessions/{session_id}/note" + (f"/{action}" if action else "")


def text_of(response):
    return response.get_data(as_text=True)


def version_of(app, session_id):
    with app.app_context():
        return db.session.scalar(select(SessionNote.version).where(SessionNote.session_id == session_id)) or 0


def note_row(app, session_id):
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        db.session.expunge_all()
        return note


def save(client, session_id, version=None, **values):
    data = {"version": "0" if version is None else str(version), **values}
    return client.submit(note_url(session_id), data)


def autosave(client, session_id, version, **values):
    return client.submit(note_url(session_id, "autosave"), {"version": str(version), **values},
                         headers={"Accept": "application/json"})


def audit_actions(app):
    with app.app_context():
        return [event.action for event in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


@pytest.fixture
def chairs(app):
    with app.app_context():
        return create_chairs(2)


def walk_to_discharge(app, clock, session_id, nurse, witness):
    """A session walked through the chair pages to discharge: dose, controlled substance, four readings
    (one at 185/112 raising an alert, acknowledged), end of infusion, 30 minutes' observation."""
    assert done(start(nurse, session_id))
    assert record_cs(nurse, session_id, witness_username=witness.username, witness_password=PASSWORD) \
        .status_code == 302
    for minute, (systolic, diastolic) in zip((10, 20, 30, 40), ((128, 80), (185, 112), (150, 92), (132, 84)),
                                             strict=True):
        clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}", systolic, diastolic))
    [alert] = rows(app, InChairAlert, session_id)
    assert done(nurse.submit(url(session_id, f"alerts/{alert.id}/acknowledge"),
                             fields(f"alert{alert.id}", action="slow", note="Rate halved.", drug_given="")))
    assert done(nurse.submit(url(session_id, "end")))
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    assert done(discharge(nurse, session_id))


def build_discharged_world(app):
    """walk_to_discharge once per worker and backend (tests/shared_world.py): two chairs, the session,
    the nurse who walked it (and the cookie of her sign-in) and the witness, as the `discharged` fixture
    made them for each test. About seventy tests start from here and each gets a fresh copy."""
    clock = app.config["CLOCK"]
    with app.app_context():
        create_chairs(2)
    session_id = make_session(app, clock)
    with app.app_context():
        nurse_user = create_user(role="nurse", username=None, password=PASSWORD, now=clock())
        witness = create_user(role="nurse", username=None, password=PASSWORD, now=clock())
    nurse = app.test_client()
    sign_in(nurse, nurse_user.username, PASSWORD)
    nurse.user = nurse_user
    walk_to_discharge(app, clock, session_id, nurse, witness)
    with nurse.session_transaction() as cookie:
        signed_in = dict(cookie)
    return {"session_id": session_id, "nurse": nurse_user, "cookie": signed_in, "now": clock()}


@pytest.fixture(scope="session")
def discharged_worlds(tmp_path_factory):
    yield from worlds_by_backend(tmp_path_factory, "discharged", build_discharged_world, StaffClient, FrozenClock)


def shares_the_walk(request):
    """Whether this test starts from the shared discharged world: a test of this module (others that import
    `discharged` run on their own app) that asks for `discharged` (or what builds on it) and needs no
    database of its own (fresh_db: concurrent signers on real connections)."""
    return (request.node.module.__name__ == __name__ and "discharged" in request.fixturenames
            and not request.node.get_closest_marker("fresh_db"))


@pytest.fixture
def discharged_world(backend, discharged_worlds, clock, request):
    """A fresh copy of the discharged world, its clock where the walk left it."""
    world = discharged_worlds(backend, *world_sources(backend, request))
    clock.now = world.data["now"]
    with world.fresh_copy(clock) as copy:
        yield copy


@pytest.fixture
def app(request, backend):
    """This module's app: the shared discharged world's for the tests that start from it, else the suite's
    per-test app (conftest's `app`)."""
    if shares_the_walk(request):
        return request.getfixturevalue("discharged_world").app
    return request.getfixturevalue("make_app")()


@pytest.fixture
def discharged(app, clock, request):
    """(session id, the nurse's signed-in client) of a session walked to discharge (walk_to_discharge)."""
    if shares_the_walk(request):
        data = request.getfixturevalue("discharged_world").data
        nurse = app.test_client()
        with nurse.session_transaction() as cookie:
            cookie.update(data["cookie"])
        nurse.user = data["nurse"]
        return data["session_id"], nurse
    request.getfixturevalue("chairs")
    session_id = make_session(app, clock)
    nurse = request.getfixturevalue("login_as")("nurse")
    witness = request.getfixturevalue("make_user")("nurse")
    walk_to_discharge(app, clock, session_id, nurse, witness)
    return session_id, nurse


@pytest.fixture
def completed(app, discharged, clock):
    """The nurse's note, saved with everything a complete note needs and marked complete."""
    session_id, nurse = discharged
    full_aggregate(app, session_id, clock, nurse.user.id)
    assert save(nurse, session_id, **COMPLETE).status_code == 302
    response = nurse.submit(note_url(session_id, "complete"), {"version": str(version_of(app, session_id))})
    assert response.status_code == 302, text_of(response)
    return session_id, nurse


def sign(client, session_id, version, password=PASSWORD):
    return client.submit(note_url(session_id, "sign"), {"version": str(version), "password": password})


@pytest.fixture
def signed(app, completed, login_as):
    session_id, nurse = completed
    physician = login_as("physician")
    response = sign(physician, session_id, version_of(app, session_id))
    assert response.status_code == 302, text_of(response)
    return session_id, nurse, physician


# --- drafts --------------------------------------------------------------------------------------

def test_a_new_note_carries_the_intention_from_the_checklist(app, discharged):
    session_id, nurse = discharged
    page = text_of(nurse.get(note_url(session_id)))
    assert "To feel like myself again." in page and "Not started" in page
    assert "note.viewed" in audit_actions(app)


def test_autosave_creates_the_draft_and_returns_the_next_version(app, discharged):
    session_id, nurse = discharged
    first = autosave(nurse, session_id, 0, mindset="Anxious about the drive in.")
    assert first.status_code == 200 and first.json["status"] == "saved" and first.json["version"] == 1
    second = autosave(nurse, session_id, 1, mindset="Anxious about the drive in, settling.")
    assert second.json["version"] == 2
    assert note_row(app, session_id).mindset == "Anxious about the drive in, settling."
    assert audit_actions(app).count("note.drafted") == 2


def test_a_stale_autosave_is_a_conflict_that_shows_both_texts_and_writes_nothing(app, discharged, login_as):
    session_id, nurse = discharged
    other = login_as("physician")
    assert autosave(nurse, session_id, 0, themes="Grief about her father.").status_code == 200
    assert autosave(other, session_id, 1, themes="Grief; then relief.").status_code == 200
    stale = autosave(nurse, session_id, 1, themes="Grief about her father, and work.")
    assert stale.status_code == 409 and stale.json["status"] == "conflict"
    assert stale.json["theirs"]["themes"] == "Grief; then relief." and stale.json["version"] == 2
    assert note_row(app, session_id).themes == "Grief; then relief."


def test_a_stale_full_save_shows_mine_in_the_form_and_theirs_beside_it_with_a_choice(app, discharged, login_as):
    session_id, nurse = discharged
    other = login_as("physician")
    assert save(nurse, session_id, themes="First text").status_code == 302
    assert save(other, session_id, 1, themes="Physician's text").status_code == 302
    conflict = save(nurse, session_id, 1, themes="Nurse's second text")
    page = text_of(conflict)
    assert conflict.status_code == 409 and "both changed one field" in page and 'id="choice-themes"' in page
    assert "Nurse&#39;s second text" in page and "Physician&#39;s text" in page
    assert 'name="version" type="hidden" value="2"' in page and 'name="pending" type="hidden" value="themes"' in page
    assert note_row(app, session_id).themes == "Physician's text"
    chosen = save(nurse, session_id, 2, themes="Nurse's second text", pending="themes", **{"choice-themes": "mine"})
    assert chosen.status_code == 302 and note_row(app, session_id).themes == "Nurse's second text"


def test_autosave_after_an_idle_logout_says_signed_out_and_the_draft_is_there_after_login(app, discharged, clock):
    session_id, nurse = discharged
    assert autosave(nurse, session_id, 0, narrative="Typed before the break.").status_code == 200
    clock.advance(minutes=16)
    after = autosave(nurse, session_id, 1, narrative="Typed after the break.")
    assert after.status_code == 401 and after.json["status"] == "signed_out"
    assert nurse.get(note_url(session_id)).status_code == 302
    assert nurse.login(nurse.user.username, PASSWORD).status_code == 302
    page = text_of(nurse.get(note_url(session_id)))
    assert "Typed before the break." in page and 'value="1"' in page
    assert autosave(nurse, session_id, 1, narrative="Typed after the break.").json["status"] == "saved"


def test_an_over_long_field_is_refused_at_the_field_with_the_text_kept(app, discharged):
    session_id, nurse = discharged
    too_long = "x" * 10_001
    response = save(nurse, session_id, narrative=too_long, mindset="Kept as typed")
    page = text_of(response)
    assert response.status_code == 400 and "Field cannot be longer than 10000 characters." in page
    assert too_long in page and "Kept as typed" in page
    assert note_row(app, session_id) is None


@pytest.mark.parametrize("value", ["11", "-1", "seven"])
def test_a_dissociation_rating_outside_0_to_10_is_an_error_at_the_field(app, discharged, value):
    session_id, nurse = discharged
    response = save(nurse, session_id, dissociation_clinician=value, themes="Kept")
    assert response.status_code == 400 and "Kept" in text_of(response)
    assert re.search(r'id="dissociation_clinician-error"', text_of(response))


def test_any_unicode_is_stored_and_given_back_unchanged(app, discharged):
    session_id, nurse = discharged
    words = "Ça va — 気分は良い 🙂 «quote» Zoë\nsecond line"
    assert save(nurse, session_id, quotes=words).status_code == 302
    assert note_row(app, session_id).quotes == words


def test_start_from_the_last_session_copies_set_and_setting_into_empty_fields_only(app, discharged, clock):
    session_id, nurse = discharged
    assert save(nurse, session_id, music="Ambient piano", room="Room 2", worries="The drive").status_code == 302
    with app.app_context():
        earlier = db.session.get(InfusionSession, session_id)
        later = db.session.scalars(select(InfusionSession).where(InfusionSession.series_id == earlier.series_id,
                                                                 InfusionSession.sequence == 2)).one()
        later_id = later.id
    assert save(nurse, later_id, room="Room 4").status_code == 302
    response = nurse.submit(note_url(later_id, "start-from-last"), {"version": "1"})
    assert response.status_code == 302
    note = note_row(app, later_id)
    assert (note.music, note.worries, note.room, note.copied_from_session_id) == (
        "Ambient piano", "The drive", "Room 4", session_id)
    assert "copied from an earlier session" in text_of(nurse.get(note_url(later_id)))


# --- adverse events ----------------------------------------------------------------------------

def test_an_adverse_event_is_recorded_linked_to_the_alert(app, discharged):
    session_id, nurse = discharged
    [alert] = rows(app, InChairAlert, session_id)
    response = nurse.submit(note_url(session_id, "adverse-events"), fields(
        "ae", kind="hypertension", onset_time="10:20", severity="moderate", intervention="Rate halved",
        drug_given="", outcome="resolved", alert_id=alert.id))
    assert response.status_code == 302
    [event] = rows(app, AdverseEvent, session_id)
    assert (event.kind, event.alert_id, event.severity) == ("hypertension", alert.id, "moderate")
    assert "185/112" in text_of(nurse.get(note_url(session_id)))


def test_an_adverse_event_needs_its_fields_and_other_needs_a_name(app, discharged):
    session_id, nurse = discharged
    response = nurse.submit(note_url(session_id, "adverse-events"), fields(
        "ae", kind="other", onset_time="", severity="", outcome="resolved", intervention="Kept text"))
    page = text_of(response)
    assert response.status_code == 400 and "Name the adverse event." in page and "Kept text" in page
    assert rows(app, AdverseEvent, session_id) == []


# --- completion and the physician's list ---------------------------------------------------------

def test_completion_lists_what_is_missing(app, discharged):
    session_id, nurse = discharged
    assert save(nurse, session_id, mindset="Calm").status_code == 302
    response = nurse.submit(note_url(session_id, "complete"), {"version": "1"})
    page = text_of(response)
    assert response.status_code == 409 and "Write the narrative of the session." in page
    assert note_row(app, session_id).status == "draft"


def test_completion_waits_for_discharge(app, clock, chairs, login_as):
    session_id = make_session(app, clock)
    nurse = login_as("nurse")
    assert save(nurse, session_id, **COMPLETE).status_code == 302
    response = nurse.submit(note_url(session_id, "complete"), {"version": "1"})
    assert response.status_code == 409 and "has not been discharged yet" in text_of(response)


def test_a_completed_note_is_on_the_physician_list_oldest_first_with_its_age(app, completed, login_as, clock):
    session_id, _ = completed
    physician = login_as("physician")
    page = text_of(physician.get("/signing"))
    assert "Casey Chairtest" in page and note_url(session_id) in page
    assert "Over 48 hours" not in page
    clock.advance(hours=52)  # the session ended at 13:00; now is 11:10 + 52 h
    physician = login_as("physician")
    assert "Over 48 hours" in text_of(physician.get("/signing"))


# --- signing -----------------------------------------------------------------------------------

def test_only_a_physician_signs_and_a_wrong_password_signs_nothing(app, completed, login_as):
    session_id, nurse = completed
    assert sign(nurse, session_id, version_of(app, session_id)).status_code == 403
    physician = login_as("physician")
    wrong = sign(physician, session_id, version_of(app, session_id), password="not my password at all")
    assert wrong.status_code == 400 and "That password is not correct." in text_of(wrong)
    assert note_row(app, session_id).signed_at is None
    assert "reauth.failed" in audit_actions(app)


def test_signing_a_version_the_physician_did_not_read_is_refused(app, completed, login_as):
    session_id, nurse = completed
    physician = login_as("physician")
    version = version_of(app, session_id)
    assert save(nurse, session_id, version, **{**COMPLETE, "narrative": "Changed after review"}).status_code == 302
    refused = sign(physician, session_id, version)
    assert refused.status_code == 400 and "changed after you opened it" in text_of(refused)
    assert note_row(app, session_id).signed_at is None
    # The refusal is in the audit trail (it was written, then rolled back with the request, before).
    assert audit_actions(app).count("note.sign_refused") == 1


def test_signing_records_signer_credentials_time_and_the_hash_of_the_session(app, completed, login_as, clock):
    session_id, _ = completed
    physician = login_as("physician")
    assert sign(physician, session_id, version_of(app, session_id)).status_code == 302
    note = note_row(app, session_id)
    assert note.status == "signed" and note.signed_at == clock() and note.signed_by_id == physician.user.id
    assert note.signer_name and re.fullmatch(r"[0-9a-f]{64}", note.content_hash)
    with app.app_context():
        assert notes.verify_signature(db.session.get(SessionNote, note.id)) is True
        assert canonical.aggregate_hash(session_id)[1] == note.content_hash
    page = text_of(physician.get(note_url(session_id)))
    assert "Electronically signed by" in page and note.content_hash in page and "Verified" in page
    assert "note.signed" in audit_actions(app)


# --- the canonical hash ------------------------------------------------------------------------

def full_aggregate(app, session_id, clock, user_id):
    """Add the rows a walk does not make: a dose order, a physician override, a refused discharge's
    answers, a pause, an adverse event."""
    with app.app_context():
        [alert] = db.session.scalars(select(InChairAlert).where(InChairAlert.session_id == session_id)).all()
        db.session.add_all([
            DoseOrder(session_id=session_id, mg_per_kg=Decimal("0.5"), reason="As ordered", ordered_by_id=user_id,
                      ordered_at=clock(), policy_version=1),
            DischargeAssessment(session_id=session_id, moaas=4, escort_present=True, instructions_given=True,
                                condition="Drowsy", open_findings=[{"code": "MENTAL_STATUS_NOT_BASELINE"}],
                                policy_version=1, assessed_at=clock(), assessed_by_id=user_id),
            FindingOverride(session_id=session_id, gate="start", code="BP_SOFT", finding={"severity": "x"},
                            reason="Reviewed", physician_id=user_id, created_at=clock()),
            InfusionEvent(session_id=session_id, kind="pause", occurred_at=clock(), alert_id=alert.id, note="p",
                          recorded_by_id=user_id),
            AdverseEvent(session_id=session_id, kind="nausea", onset_at=clock(), severity="mild", outcome="resolved",
                         recorded_at=clock(), recorded_by_id=user_id),
        ])
        db.session.commit()


def locked_columns():
    """(part name, model, column) for every signed column of every part of the aggregate."""
    cases = [("session", InfusionSession, column.key) for column in inspect(InfusionSession).column_attrs
             if column.key not in canonical.SESSION_COMPUTED]
    cases += [("note", SessionNote, column.key) for column in inspect(SessionNote).column_attrs
              if column.key not in canonical.NOTE_EXCLUDED]
    for name, model, _ in canonical.PARTS:
        cases += [(name, model, column.key) for column in inspect(model).column_attrs]
    return cases


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, (list, dict)):
        return [value, "changed"]
    if value is None:
        return 1
    if isinstance(value, date):  # dates and datetimes
        return value + timedelta(days=1)
    return value + type(value)(1)


def test_the_hash_is_stable_and_changes_with_every_locked_field(app, completed, clock):
    session_id, _ = completed
    with app.app_context():
        first = canonical.aggregate_hash(session_id)
        assert canonical.aggregate_hash(session_id) == first, "same content, same hash"
        session, note, parts = canonical.load_aggregate(session_id)
        assert all(parts[name] for name, _, _ in canonical.PARTS), "every part has a row to change"
        base = canonical.canonical_bytes(canonical.serialize(session, note, parts))
        assert canonical.sha256_hex(base) == first[1]
        db.session.expunge_all()  # change values in memory only
        cases = locked_columns()
        assert len(cases) > 120
        for part, _model, column in cases:
            row = {"session": session, "note": note}.get(part) or parts[part]
            row = row[0] if isinstance(row, list) else row
            original = getattr(row, column)
            setattr(row, column, _changed(original))
            changed = canonical.canonical_bytes(canonical.serialize(session, note, parts))
            assert canonical.sha256_hex(changed) != first[1], f"{part}.{column} is not covered by the hash"
            setattr(row, column, original)
        db.session.rollback()


def test_the_canonical_form_is_sorted_compact_utf8_json_with_utc_times(app, discharged):
    session_id, _ = discharged
    with app.app_context():
        content, digest = canonical.aggregate_hash(session_id)
    assert content.startswith('{"adverse_events":[],"alerts":[{') and ", " not in content[:200]
    assert re.search(r'"taken_at":"2026-11-26T15:10:00\.000000Z"', content)
    assert '"format":"opsmgr.session/3"' in content and '"dose_orders":[]' in content


def test_a_record_signed_under_an_older_format_still_verifies_under_it(app, completed, login_as, monkeypatch):
    """Format 1 (before dose orders) left out the orders and dose_record.dose_order_id."""
    session_id, _ = completed
    monkeypatch.setattr(canonical, "FORMAT", "opsmgr.session/1")
    assert sign(login_as("physician"), session_id, version_of(app, session_id)).status_code == 302
    monkeypatch.undo()
    note = note_row(app, session_id)
    assert canonical.format_of(note.signed_content) == "opsmgr.session/1"
    assert '"dose_orders"' not in note.signed_content and '"dose_order_id"' not in note.signed_content
    with app.app_context():
        assert notes.verify_signature(db.session.get(SessionNote, note.id)) is True
        assert canonical.aggregate_hash(session_id)[1] != note.content_hash, "today's format differs"


# --- the lock ----------------------------------------------------------------------------------

def test_after_signing_the_services_refuse_every_change(app, signed, clock):
    session_id, _, _ = signed
    with app.app_context():
        session = db.session.get(InfusionSession, session_id)
        event = db.session.scalars(select(AdverseEvent).where(AdverseEvent.session_id == session_id)).first()
        calls = [
            lambda: notes.save_draft(session, {"mindset": "Changed"}, expected_version=None, actor=FACTORY_ACTOR,
                                     now=clock()),
            lambda: notes.add_adverse_event(session, {"kind": "nausea", "onset_at": clock(), "severity": "mild",
                                                      "outcome": "resolved"}, actor=FACTORY_ACTOR, now=clock()),
            lambda: notes.remove_adverse_event(session, event, actor=FACTORY_ACTOR, now=clock()),
            lambda: notes.complete_note(session, expected_version=None, actor=FACTORY_ACTOR, now=clock()),
        ]
        for call in calls:
            with pytest.raises(RecordLocked):
                call()
            db.session.rollback()
        from opsmgr.infusion import service as infusion
        from opsmgr.infusion import vitals as vitals_service

        with pytest.raises((RecordLocked, infusion.InfusionError)):
            vitals_service.record_vitals(session, systolic=120, diastolic=80, heart_rate=70, spo2=98, moaas=5,
                                   taken_at=clock(), actor=FACTORY_ACTOR, now=clock())
        db.session.rollback()


def _first_row(model, session_id):
    column = model.id if model is InfusionSession else model.session_id
    return db.session.scalars(select(model).where(column == session_id).order_by(model.id)).first()


def test_after_signing_the_orm_cannot_change_or_delete_any_locked_row(app, signed):
    """One signed session, every locked table in turn (a setup per table would cost a walk each)."""
    session_id, _, _ = signed
    with app.app_context():
        for model in canonical.LOCKED_MODELS:
            row = _first_row(model, session_id)
            assert row is not None, model.__tablename__
            column = next(c.key for c in inspect(model).column_attrs if c.key in {
                "mindset", "status_reason", "reason", "change_reason", "lot", "systolic", "message", "note",
                "condition", "intervention", "intention", "band"})
            setattr(row, column, _changed(getattr(row, column)))
            with pytest.raises(RecordLocked):
                db.session.flush()
            db.session.rollback()
            db.session.delete(_first_row(model, session_id))
            with pytest.raises(RecordLocked):
                db.session.flush()
            db.session.rollback()


def test_after_signing_the_orm_cannot_add_a_row_to_the_session(app, signed, clock):
    session_id, _, _ = signed
    with app.app_context():
        db.session.add(AdverseEvent(session_id=session_id, kind="nausea", onset_at=clock(), severity="mild",
                                    outcome="resolved", recorded_at=clock(), recorded_by_id=1))
        with pytest.raises(RecordLocked):
            db.session.flush()
        db.session.rollback()


def test_after_signing_the_database_refuses_core_updates_and_deletes(app, signed):
    """Past the ORM guard: Core statements and raw SQL meet the triggers, on SQLite and PostgreSQL."""
    session_id, _, _ = signed
    with app.app_context():
        for model in canonical.LOCKED_MODELS:
            key = model.id if model is InfusionSession else model.session_id
            table = model.__tablename__
            for statement, params in [
                (update(model).where(key == session_id).values(id=model.id), None),
                (delete(model).where(key == session_id), None),
                (text(f"UPDATE {table} SET id = id WHERE {key.key} = :id"), {"id": session_id}),
            ]:
                with pytest.raises(DatabaseError, match="signed and locked"):
                    db.session.execute(statement, params)
                db.session.rollback()
            assert _first_row(model, session_id) is not None, table


def test_after_signing_the_database_refuses_a_raw_insert(app, signed, clock):
    session_id, _, _ = signed
    with app.app_context():
        with pytest.raises(DatabaseError, match="signed and locked"):
            db.session.execute(text(
                "INSERT INTO vital_sign (session_id, taken_at, systolic, diastolic, recorded_at) "
                "VALUES (:id, :at, 120, 80, :at)"), {"id": session_id, "at": clock().replace(tzinfo=None)})
        db.session.rollback()


CRAFTED = [
    ("note save", lambda s, a: (note_url(s), {"version": "99", "mindset": "x"})),
    ("note autosave", lambda s, a: (note_url(s, "autosave"), {"version": "99", "mindset": "x"})),
    ("adverse event", lambda s, a: (note_url(s, "adverse-events"), fields(
        "ae", kind="nausea", onset_time="10:20", severity="mild", outcome="resolved"))),
    ("complete", lambda s, a: (note_url(s, "complete"), {"version": "99"})),
    ("checklist", lambda s, a: (f"/sessions/{s}/checklist", {"version": "1", "systolic": "120"})),
    ("vitals", lambda s, a: (url(s, "vitals"), fields("vitals", systolic=120, diastolic=80, heart_rate=70,
                                                      spo2=98, moaas=5, taken_at="11:30"))),
    ("acknowledge", lambda s, a: (url(s, f"alerts/{a}/acknowledge"), fields(f"alert{a}", action="stop", note="x"))),
    ("end", lambda s, a: (url(s, "end"), {})),
    ("discharge", lambda s, a: (url(s, "discharge"), fields("discharge", moaas=5, escort_present="yes",
                                                            instructions_given="yes", condition="x"))),
]


def test_after_signing_a_crafted_post_to_any_endpoint_changes_nothing(app, signed):
    session_id, nurse, _ = signed
    [alert] = rows(app, InChairAlert, session_id)
    with app.app_context():
        before = canonical.aggregate_hash(session_id)
    for name, build in CRAFTED:
        path, data = build(session_id, alert.id)
        response = nurse.submit(path, data)
        assert response.status_code in {400, 409}, (name, response.status_code)
    with app.app_context():
        assert canonical.aggregate_hash(session_id) == before
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        assert notes.verify_signature(note) is True


def test_the_signed_page_has_no_edit_form_and_a_second_signature_is_refused(app, signed):
    session_id, nurse, physician = signed
    page = text_of(nurse.get(note_url(session_id)))
    assert 'id="note-form"' not in page and "Signed and locked" in page
    assert "Nothing: the session record is signed" in text_of(nurse.get(f"/sessions/{session_id}"))
    assert "Note signed" in text_of(nurse.get("/today"))
    again = sign(physician, session_id, version_of(app, session_id))
    assert again.status_code in {400, 409}


# --- addenda -----------------------------------------------------------------------------------

def addendum(client, session_id, password=PASSWORD, **values):
    data = {"reason": "Late report of a headache", "body": "Called at 18:00: mild headache, resolved.",
            "event_on": "", "event_time": "", "password": password, **values}
    return client.submit(note_url(session_id, "addenda"), data)


def test_addenda_are_signed_by_their_author_and_the_original_stays_above(app, signed, clock):
    session_id, nurse, physician = signed
    wrong = addendum(nurse, session_id, password="wrong password entirely")
    assert wrong.status_code == 400 and "That password is not correct." in text_of(wrong)
    assert "Called at 18:00" in text_of(wrong), "what was typed is kept"
    clock.advance(hours=3)
    nurse.login(nurse.user.username, PASSWORD)
    assert addendum(nurse, session_id, event_on="2026-11-26", event_time="11:30").status_code == 302
    physician.login(physician.user.username, PASSWORD)
    assert addendum(physician, session_id, reason="Clarification", body="BP reviewed.").status_code == 302
    with app.app_context():
        first, second = db.session.scalars(select(NoteAddendum).order_by(NoteAddendum.id)).all()
        assert first.author_id == nurse.user.id and first.event_at is not None and first.signed_at == clock()
        assert second.author_id == physician.user.id and second.event_at is None
        assert re.fullmatch(r"[0-9a-f]{64}", first.content_hash) and first.content_hash != second.content_hash
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        assert notes.verify_signature(note) is True, "addenda never touch the signed record"
    page = text_of(nurse.get(note_url(session_id)))
    assert page.index("Calm, a little tired.") < page.index("Late report of a headache") < page.index("Clarification")
    assert "Late entry" in page and "describes 26 November 2026 at 11:30" in page
    assert audit_actions(app).count("note.addendum_signed") == 2


def test_an_addendum_cannot_describe_the_future_or_go_on_an_unsigned_note(app, completed, login_as):
    session_id, nurse = completed
    assert addendum(nurse, session_id).status_code == 400
    physician = login_as("physician")
    assert sign(physician, session_id, version_of(app, session_id)).status_code == 302
    future = addendum(nurse, session_id, event_on="2026-11-27", event_time="09:00")
    assert future.status_code == 400 and "cannot describe something in the future" in text_of(future)


def test_the_database_keeps_addenda_append_only(app, signed):
    session_id, nurse, _ = signed
    assert addendum(nurse, session_id).status_code == 302
    with app.app_context():
        for statement in ("UPDATE note_addendum SET body = 'x'", "DELETE FROM note_addendum"):
            with pytest.raises(DatabaseError, match="append-only"):
                db.session.execute(text(statement))
            db.session.rollback()


def test_the_database_refuses_an_addendum_on_an_unsigned_note(app, completed, clock):
    session_id, _ = completed
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        db.session.add(NoteAddendum(session_id=session_id, note_id=note.id, author_id=1, author_name="X",
                                    reason="r", body="b", signed_at=clock(), content_hash="0" * 64))
        with pytest.raises(DatabaseError, match="signed notes"):
            db.session.flush()
        db.session.rollback()


# --- who sees what -----------------------------------------------------------------------------

def test_a_coordinator_sees_the_note_status_but_never_its_content(app, completed, login_as):
    session_id, _ = completed
    coordinator = login_as("coordinator")
    assert coordinator.get(note_url(session_id)).status_code == 403
    page = text_of(coordinator.get(f"/sessions/{session_id}"))
    assert "Note: complete" in page.replace("Complete", "complete")
    assert "Calm, a little tired." not in page and note_url(session_id) not in page
    assert "A physician signs the note" in page


def test_every_read_and_write_of_a_note_is_audited(app, signed, login_as):
    session_id, nurse, _ = signed
    nurse.get(note_url(session_id))
    actions = audit_actions(app)
    for action in ("note.drafted", "note.completed", "note.signed", "note.viewed"):
        assert action in actions


def add_complete_notes(app, first, last, clock):
    """A complete note on the first session of each bulk patient first..last-1 (rows written directly)."""
    from sqlalchemy import insert

    with app.app_context():
        sessions = db.session.execute(select(InfusionSession.id).where(
            InfusionSession.patient_id.between(first, last - 1), InfusionSession.sequence == 1)).scalars().all()
        db.session.execute(update(InfusionSession).where(InfusionSession.id.in_(sessions)).values(status="discharged"))
        user_id = db.session.scalar(text("SELECT min(id) FROM staff_user"))
        db.session.execute(insert(SessionNote), [{
            "session_id": s, "status": "complete", "mindset": "m", "narrative": "n", "created_at": clock(),
            "created_by_id": user_id, "updated_at": clock(), "updated_by_id": user_id, "completed_at": clock(),
            "completed_by_id": user_id} for s in sessions])
        db.session.commit()


def test_the_unsigned_list_runs_the_same_statements_for_3_and_60_notes(app, clock, login_as):
    from tests.factories import create_user
    from tests.sql import count_statements
    from tests.test_statement_counts import add_patients

    with app.app_context():
        chair_ids = create_chairs(4)
        physician_id = create_user(role="physician", username=None, password="physician passphrase", now=clock()).id
    add_patients(app, 1, 4, chair_ids, physician_id)
    add_complete_notes(app, 1, 4, clock)
    physician = login_as("physician")
    physician.get("/signing")
    with count_statements(app) as few:
        assert text_of(physician.get("/signing")).count("Review and sign") == 3
    add_patients(app, 4, 61, chair_ids, physician_id)
    add_complete_notes(app, 4, 61, clock)
    with count_statements(app) as many:
        page = text_of(physician.get("/signing"))
    assert page.count("Review and sign") == 60 and "Bulk Patient 60" in page
    assert few["n"] == many["n"], f"{few['n']} statements with 3 notes, {many['n']} with 60"


def test_completing_over_a_colleagues_newer_text_is_refused_but_over_my_own_is_not(app, discharged, login_as):
    session_id, nurse = discharged
    physician = login_as("physician")
    assert save(nurse, session_id, **COMPLETE).status_code == 302
    assert save(physician, session_id, 1, **{**COMPLETE, "themes": "Added by the physician"}).status_code == 302
    stale = nurse.submit(note_url(session_id, "complete"), {"version": "1"})
    assert stale.status_code == 302 and note_row(app, session_id).status == "draft"
    assert "a colleague changed this note after you opened it" in text_of(nurse.get(note_url(session_id)))
    assert save(nurse, session_id, 2, **{**COMPLETE, "themes": "Nurse again"}).status_code == 302
    own = nurse.submit(note_url(session_id, "complete"), {"version": "2"})  # her own autosave made version 3
    assert own.status_code == 302 and note_row(app, session_id).status == "complete"


def test_autosave_gets_json_when_the_form_expired_or_the_note_was_signed(app, signed):
    session_id, nurse, _ = signed
    locked = autosave(nurse, session_id, 99, mindset="x")
    assert locked.status_code == 409 and locked.json["status"] == "refused" and "signed" in locked.json["message"]
    expired = nurse.post(note_url(session_id, "autosave"), data={"version": "1", "mindset": "x"},
                         headers={"Accept": "application/json"})
    assert expired.status_code == 400 and expired.json["status"] == "expired"
    assert "csrf.failed" in audit_actions(app) and "record.change_refused" in audit_actions(app)


# --- races -------------------------------------------------------------------------------------

def run_together(app, calls):
    """Run callables in threads that start together, each in its own app context and transaction."""
    import threading

    from sqlalchemy.exc import IntegrityError

    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def work(index, call):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                call()
                db.session.commit()
                outcomes[index] = "ok"
            except (notes.NoteError, RecordLocked, IntegrityError, DatabaseError) as error:
                db.session.rollback()
                outcomes[index] = type(error).__name__
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                db.session.rollback()
                outcomes[index] = f"unexpected {error!r}"

    threads = [threading.Thread(target=work, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a signature hung"
    return outcomes


@pytest.mark.fresh_db
def test_two_physicians_signing_at_once_make_one_signature(app, completed, make_user, clock):
    from opsmgr.auth.models import StaffUser

    session_id, _ = completed
    doctors = [make_user("physician"), make_user("physician")]
    version = version_of(app, session_id)

    def signing(user_id):
        def call():
            session = db.session.get(InfusionSession, session_id)
            notes.sign_note(session, physician=db.session.get(StaffUser, user_id), password=PASSWORD,
                            expected_version=version, ip=None, now=clock())
        return call

    outcomes = run_together(app, [signing(doctor.id) for doctor in doctors])
    assert sorted(outcomes)[-1] == "ok" and outcomes.count("ok") == 1, outcomes
    assert not any(outcome.startswith("unexpected") for outcome in outcomes), outcomes
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        assert note.signed_by_id in {doctor.id for doctor in doctors} and notes.verify_signature(note) is True


@pytest.mark.fresh_db
def test_a_write_racing_the_signature_lands_before_the_hash_or_is_refused(app, completed, make_user, clock):
    from opsmgr.auth.models import StaffUser

    session_id, nurse = completed
    doctor = make_user("physician")
    version = version_of(app, session_id)
    actor = FACTORY_ACTOR.__class__(nurse.user.id, nurse.user.username, "nurse")

    def sign():
        notes.sign_note(db.session.get(InfusionSession, session_id), physician=db.session.get(StaffUser, doctor.id),
                        password=PASSWORD, expected_version=version, ip=None, now=clock())

    def add_event():
        notes.add_adverse_event(db.session.get(InfusionSession, session_id), {
            "kind": "headache", "onset_at": clock(), "severity": "mild", "outcome": "resolved"},
            actor=actor, now=clock())

    for _ in range(3):
        outcomes = run_together(app, [sign, add_event])
        assert not any(outcome.startswith("unexpected") for outcome in outcomes), outcomes
        if outcomes[0] == "ok":
            break
    else:
        pytest.fail(f"the signature never went through: {outcomes}")
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        events = db.session.scalars(select(AdverseEvent).where(AdverseEvent.session_id == session_id)).all()
        assert notes.verify_signature(note) is True, outcomes
        assert len(events) - 1 == note.signed_content.count('"kind":"headache"'), "every stored event was signed"
