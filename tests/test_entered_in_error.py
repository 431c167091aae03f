"""Entered in error: a wrong reading, weight, medication or contraindication is marked by its author or a
physician with a reason; it stays visible, struck through, and stops counting (alerts, vitals due, the
discharge gate, the chart's latest weight, the checklist's medications). The signed record keeps the mark
(format 3); records signed under formats 1 and 2 still verify; after signing only an addendum can say it."""
import json

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.corrections import service as corrections
from opsmgr.corrections.service import CorrectionError
from opsmgr.extensions import db
from opsmgr.infusion import gate as gate_service
from opsmgr.infusion import vitals as vitals_service
from opsmgr.infusion.models import InChairAlert, VitalSign
from opsmgr.notes import service as notes
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import PatientContraindication, PatientMedication, PatientWeight
from opsmgr.rules.corrections import NO_REASON, SIGNED, TOO_LONG
from opsmgr.schedule.service import change_status
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession
from tests import test_notes
from tests.factories import FACTORY_ACTOR
from tests.test_infusion import done, fields, make_session, rows, start, text, url, vitals, words
from tests.test_notes import COMPLETE, note_url, save, sign, version_of

#: Fixtures of the notes tests: a session walked to discharge through the chair pages.
chairs, discharged = test_notes.chairs, test_notes.discharged

REASON = "Typed 185/112 for 158/92: cuff on the wrong arm."


def in_error_url(session_id, reading_id):
    return url(session_id, f"vitals/{reading_id}/entered-in-error")


def mark(client, session_id, reading_id, reason=REASON):
    return client.submit(in_error_url(session_id, reading_id), fields(f"in-error-vitals-{reading_id}", reason=reason))


def reading_row(app, reading_id):
    with app.app_context():
        row = db.session.get(VitalSign, reading_id)
        db.session.expunge_all()
        return row


def audit(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


@pytest.fixture
def wrong_reading(app, clock, chairs, login_as):
    """Infusing since 10:00; at 10:10 the nurse records 185/112, which raises an alert."""
    session_id = make_session(app, clock)
    nurse = login_as("nurse")
    assert done(start(nurse, session_id))
    clock.advance(minutes=10)
    assert done(vitals(nurse, session_id, "10:10", 185, 112))
    [reading] = rows(app, VitalSign, session_id)
    return session_id, reading.id, nurse


# --- readings at the chair -----------------------------------------------------------------------

def test_the_author_marks_a_reading_in_error_and_it_stops_counting(app, clock, wrong_reading):
    session_id, reading_id, nurse = wrong_reading
    [alert] = rows(app, InChairAlert, session_id)
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        assert "ALERT_UNACKNOWLEDGED" in {f.code for f in gate_service.discharge_gate(visit, now=clock()).findings}
    assert "Next vitals: 10:20" in words(nurse.get("/today"))

    assert done(mark(nurse, session_id, reading_id, f"  {REASON}  "))

    row = reading_row(app, reading_id)
    assert (row.entered_in_error_at, row.entered_in_error_by_id, row.entered_in_error_reason) == (
        clock(), nurse.user.id, REASON)
    page = text(nurse.get(url(session_id)))
    assert "<del>185/112</del>" in page and "Withdrawn" in page and "Not acknowledged" not in page
    assert f"Marked by {nurse.user.username.title()} at 10:10: {REASON}".replace("'", "&#39;") in page
    assert f"alerts/{alert.id}/acknowledge" not in page, "a withdrawn alert asks for nothing"
    assert in_error_url(session_id, reading_id) not in page, "one-way: no second mark"
    # The alert, the vitals due and the discharge gate no longer count the reading.
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        assert "ALERT_UNACKNOWLEDGED" not in {f.code for f in gate_service.discharge_gate(visit, now=clock()).findings}
        assert vitals_service.next_vitals_due(visit, clock()).due_at == clock()
    assert "Next vitals: 10:10" in words(nurse.get("/today"))
    refused = nurse.submit(url(session_id, f"alerts/{alert.id}/acknowledge"),
                           fields(f"alert{alert.id}", action="continue", note="Fine"))
    assert refused.status_code == 400 and "withdrawn" in text(refused)
    again = mark(nurse, session_id, reading_id, "Again")
    assert again.status_code == 400 and "already marked entered in error" in text(again)
    [event] = audit(app, "vitals.entered_in_error")
    assert json.loads(event.details) == {"vital_sign_id": reading_id, "withdrawn_alerts": ["ALERT_BLOOD_PRESSURE"]}
    assert (event.user_id, event.patient_id is not None) == (nurse.user.id, True)


def test_a_physician_may_mark_a_nurses_reading_and_another_nurse_may_not(app, wrong_reading, login_as):
    session_id, reading_id, _ = wrong_reading
    colleague, physician = login_as("nurse"), login_as("physician")
    assert in_error_url(session_id, reading_id) not in text(colleague.get(url(session_id)))
    refused = mark(colleague, session_id, reading_id)
    assert refused.status_code == 403 and reading_row(app, reading_id).entered_in_error_at is None
    assert json.loads(audit(app, "access.denied")[-1].details)["endpoint"] == "infusion.vitals_in_error"

    assert in_error_url(session_id, reading_id) in text(physician.get(url(session_id)))
    assert done(mark(physician, session_id, reading_id))
    assert reading_row(app, reading_id).entered_in_error_by_id == physician.user.id


def test_the_reason_is_required_at_its_field_and_what_was_typed_is_kept(app, wrong_reading):
    session_id, reading_id, nurse = wrong_reading
    blank = mark(nurse, session_id, reading_id, "   ")
    assert blank.status_code == 400
    assert f'id="in-error-vitals-{reading_id}-reason-error"' in text(blank)
    assert NO_REASON.replace("'", "&#39;") in text(blank)
    typed = "Wrong patient. " * 21
    too_long = mark(nurse, session_id, reading_id, typed)
    assert too_long.status_code == 400 and TOO_LONG in text(too_long) and typed.strip() in text(too_long)
    assert reading_row(app, reading_id).entered_in_error_at is None


def test_the_signed_record_keeps_the_mark_and_afterwards_only_an_addendum_can_say_it(app, discharged, login_as):
    session_id, nurse = discharged
    readings = {row.taken_at.minute: row.id for row in rows(app, VitalSign, session_id)}
    assert done(mark(nurse, session_id, readings[30], "Typed in the wrong chair's row."))
    assert save(nurse, session_id, **COMPLETE).status_code == 302
    assert nurse.submit(note_url(session_id, "complete"), {"version": str(version_of(app, session_id))}) \
        .status_code == 302
    assert sign(login_as("physician"), session_id, version_of(app, session_id)).status_code == 302

    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        content = json.loads(note.signed_content)
        assert content["format"] == "opsmgr.session/3" and notes.verify_signature(note) is True
        marked = next(row for row in content["vitals"] if row["id"] == readings[30])
        assert marked["entered_in_error_reason"] == "Typed in the wrong chair's row."
        assert marked["entered_in_error_by_id"] == nurse.user.id
    record = text(nurse.get(note_url(session_id)))
    assert "4 readings" in record and "Entered in error: <del>10:30 150/92</del>" in record

    page = text(nurse.get(url(session_id)))
    assert "entered-in-error" not in page.replace("in-error-mark", ""), "no form once signed"
    refused = mark(nurse, session_id, readings[40])
    assert refused.status_code == 400 and "addendum" in text(refused)
    assert reading_row(app, readings[40]).entered_in_error_at is None
    [event] = audit(app, "vitals.entered_in_error_refused")
    assert (event.outcome, json.loads(event.details)["reason"]) == ("denied", "signed")
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        with pytest.raises(CorrectionError, match="addendum"):
            corrections.mark_reading_in_error(visit, db.session.get(VitalSign, readings[40]), reason="x",
                                              actor=FACTORY_ACTOR, now=visit.ends_at)
        db.session.rollback()
    assert SIGNED in text(refused).replace("&#39;", "'")


def test_records_signed_under_format_2_still_verify_without_the_marks(app, discharged, login_as, monkeypatch):
    session_id, nurse = discharged
    assert save(nurse, session_id, **COMPLETE).status_code == 302
    assert nurse.submit(note_url(session_id, "complete"), {"version": str(version_of(app, session_id))}) \
        .status_code == 302
    monkeypatch.setattr(canonical, "FORMAT", "opsmgr.session/2")
    assert sign(login_as("physician"), session_id, version_of(app, session_id)).status_code == 302
    monkeypatch.undo()
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == session_id))
        assert canonical.format_of(note.signed_content) == "opsmgr.session/2"
        assert "entered_in_error" not in note.signed_content, "format 2 hashes as it always did"
        assert notes.verify_signature(note) is True
        assert canonical.aggregate_hash(session_id, "opsmgr.session/1")[0].count("entered_in_error") == 0


# --- the chart: weights, medications, contraindications --------------------------------------------

def entry_url(patient_id, kind, entry_id):
    return f"/patients/{patient_id}/{kind}/{entry_id}/entered-in-error"


def mark_entry(client, patient_id, kind, entry_id, reason="Recorded on the wrong patient's chart."):
    return client.submit(entry_url(patient_id, kind, entry_id), fields(f"in-error-{kind}-{entry_id}", reason=reason))


def entry_ids(app, model, patient_id):
    with app.app_context():
        return db.session.scalars(select(model.id).where(model.patient_id == patient_id).order_by(model.id)).all()


@pytest.fixture
def chart(app, clock, chairs, login_as):
    """A checked-in patient whose nurse recorded 70.0 kg (1 Nov), then 72.0 kg (20 Nov, wrong), lamotrigine
    and a cardiac contraindication through the chart."""
    session_id = make_session(app, clock, cleared=False)
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        change_status(visit, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        patient_id = visit.patient_id
    nurse = login_as("nurse")
    base = f"/patients/{patient_id}"
    for kg, day in (("70.0", "2026-11-01"), ("72.0", "2026-11-20")):
        assert nurse.submit(f"{base}/weights", {"kg": kg, "measured_on": day}).status_code == 302
    assert nurse.submit(f"{base}/medications", {"name": "Lamotrigine", "med_class": "lamotrigine",
                                                "started_on": "2025-01-05"}).status_code == 302
    assert nurse.submit(f"{base}/contraindications", {"kind": "cardiac_disease", "detail": "Stent 2019",
                                                      "noted_on": "2026-11-01"}).status_code == 302
    return session_id, patient_id, nurse


def test_chart_entries_are_marked_by_their_author_or_a_physician(app, chart, login_as):
    _, patient_id, nurse = chart
    [_, wrong] = entry_ids(app, PatientWeight, patient_id)
    [medication] = entry_ids(app, PatientMedication, patient_id)
    [contraindication] = entry_ids(app, PatientContraindication, patient_id)
    colleague, physician = login_as("nurse"), login_as("physician")

    assert mark_entry(nurse, patient_id, "weights", wrong).status_code == 302
    assert mark_entry(colleague, patient_id, "medications", medication).status_code == 403
    assert mark_entry(physician, patient_id, "medications", medication).status_code == 302
    blank = mark_entry(nurse, patient_id, "contraindications", contraindication, "")
    assert blank.status_code == 400 and NO_REASON.replace("'", "&#39;") in text(blank)
    assert mark_entry(nurse, patient_id, "contraindications", contraindication).status_code == 302
    assert mark_entry(physician, patient_id, "weights", wrong).status_code == 400, "one-way"

    page = text(nurse.get(f"/patients/{patient_id}"))
    assert "<del>72.0 kg</del>" in page and "<del>Lamotrigine</del>" in page and "None on record" in page
    assert f"Marked by {physician.user.username.title()}" in page and "wrong patient&#39;s chart" in page
    assert entry_url(patient_id, "weights", wrong) not in page
    assert f"/medications/{medication}/stop" not in page, "an entry in error is not stopped"
    for kind in ("weight", "medication", "contraindication"):
        [event] = audit(app, f"patient.{kind}_entered_in_error")
        assert json.loads(event.details) == {}, "no clinical values in the audit trail"


def test_chart_entries_in_error_stop_counting_in_the_checklist(app, chart, login_as):
    session_id, patient_id, nurse = chart
    [_, wrong] = entry_ids(app, PatientWeight, patient_id)
    [medication] = entry_ids(app, PatientMedication, patient_id)
    before = text(nurse.get(f"/sessions/{session_id}/checklist"))
    assert "Last on the record: 72.0 kg" in before and "<strong>Lamotrigine</strong>" in before
    assert mark_entry(nurse, patient_id, "weights", wrong).status_code == 302
    assert mark_entry(nurse, patient_id, "medications", medication).status_code == 302
    after = text(nurse.get(f"/sessions/{session_id}/checklist"))
    assert "Last on the record: 70.0 kg" in after and "<strong>Lamotrigine</strong>" not in after
