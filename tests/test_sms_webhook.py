"""Twilio's webhooks: signed SMS replies (YES, STOP, START, HELP), delivery status callbacks, forged
requests; and the session confirmations they record, shown in words on the board, the calendar and
the session page. Requests are signed as Twilio signs them (stack-next §3): for the public https URL."""
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.messaging.models import SessionConfirmation
from opsmgr.outbox.models import OutboxMessage
from opsmgr.outbox.service import enqueue_message
from opsmgr.patients.models import Patient
from tests.factories import create_chairs, create_patient, order_series
from tests.test_security import snapshot

TOKEN = "twilio-auth-token-for-tests"
PUBLIC_URL = "https://clinic.example.org"
PHONE = "+15035550142"
MONDAY = date(2026, 11, 30)
#: Saturday noon in New York: the series' first session (Monday 09:00 local, 14:00 UTC) is 50 h away.
SATURDAY = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
FIRST_START = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


@pytest.fixture
def app(make_app):
    return make_app(TWILIO_AUTH_TOKEN=TOKEN, PUBLIC_URL=PUBLIC_URL, CLINIC_NAME="Maple Clinic",
                    CLINIC_PHONE="(503) 555-0100")


@pytest.fixture
def patient(app, clock):
    """A patient texted at PHONE, with an IV series from Monday; the clock on Saturday. (patient id, session ids)."""
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock(), phone=PHONE, reminder_channel="sms",
                                 contact_consent_on=date(2026, 11, 1))
        series = order_series(patient_id=patient.id, now=clock(), start_on=MONDAY)
        ids = patient.id, [visit.id for visit in series.sessions]
    clock.now = SATURDAY
    return ids


def sign(url, params, token=TOKEN):
    return RequestValidator(token).compute_signature(url, params)


def twilio_post(app, path, params, signature=None):
    """POST as Twilio does: form fields and X-Twilio-Signature for PUBLIC_URL + path, no cookie, no CSRF."""
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, params) if signature is None else signature}
    return app.test_client().post(path, data=params, headers=headers, base_url=PUBLIC_URL)


def reply(app, body, phone=PHONE):
    return twilio_post(app, "/sms/inbound", {"From": phone, "To": "+15035550199", "Body": body,
                                             "MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "2" * 32})


def audit(app, prefix=""):
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                    .order_by(AuditEvent.id)).all()
        return [(e.action, e.outcome, e.patient_id, json.loads(e.details) if e.details else None) for e in events]


def assert_no_phi_in_audit(app):
    with app.app_context():
        text = " ".join(str(tuple(row)) for row in db.session.execute(select(AuditEvent.__table__)))
    assert PHONE not in text and PHONE[2:] not in text
    for word in ("YES", "STOP", "UNSUBSCRIBE", "Maple Clinic"):
        assert f"'{word}'" not in text and f'"{word}"' not in text


def confirmation(app, session_id):
    with app.app_context():
        row = db.session.get(SessionConfirmation, session_id)
        return None if row is None else (row.starts_at, row.via, row.recorded_by_id)


def queue(app, clock, patient_id, *keys_and_channels):
    with app.app_context():
        for key, channel in keys_and_channels:
            enqueue_message(channel, PHONE if channel == "sms" else "pat@example.org", "Your appointment",
                            subject="Reminder" if channel == "email" else None, key=key,
                            due_at=clock() + (FIRST_START - SATURDAY) / 2, patient_id=patient_id, now=clock())
        db.session.commit()


def statuses(app, *keys):
    with app.app_context():
        rows = dict(db.session.execute(select(OutboxMessage.dedupe_key, OutboxMessage.status)
                                       .where(OutboxMessage.dedupe_key.in_(keys))).all())
    return [rows[key] for key in keys]


# --- replies --------------------------------------------------------------------------------------


def test_a_signed_yes_confirms_the_next_session_within_72_hours(app, patient):
    patient_id, sessions = patient
    response = reply(app, " yes! ")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    body = response.get_data(as_text=True)
    assert "<Response><Message>Maple Clinic: thank you, your appointment on Mon 30 Nov at 09:00 is confirmed." \
           "</Message></Response>" in body
    assert confirmation(app, sessions[0]) == (FIRST_START, "sms", None)
    assert confirmation(app, sessions[1]) is None
    assert audit(app, "session.confirmed") == [
        ("session.confirmed", "ok", patient_id, {"via": "sms", "session_id": sessions[0]})]
    assert_no_phi_in_audit(app)


def test_a_yes_with_no_session_in_the_next_72_hours_confirms_nothing(app, patient, clock):
    clock.now = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)  # Monday 14:00 UTC is 73 h away
    response = reply(app, "C")
    assert "we found no appointment in the next 3 days" in response.get_data(as_text=True)
    assert confirmation(app, patient[1][0]) is None
    assert [event[0] for event in audit(app, "sms.")] == ["sms.reply_nothing_to_confirm"]


def test_unsubscribe_opts_out_and_cancels_pending_texts_and_start_opts_back_in(app, patient, clock):
    patient_id, _ = patient
    queue(app, clock, patient_id, ("test:sms:1", "sms"), ("test:sms:2", "sms"), ("test:email:1", "email"))
    with app.app_context():  # the two queued here and the booked sessions' own reminders
        texts = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.patient_id == patient_id, OutboxMessage.channel == "sms", OutboxMessage.status == "pending"))
    assert texts > 2

    response = reply(app, "Unsubscribe")
    assert response.status_code == 200
    assert response.get_data(as_text=True).endswith("<Response></Response>")
    with app.app_context():
        assert db.session.get(Patient, patient_id).sms_opted_out_at == SATURDAY
    assert statuses(app, "test:sms:1", "test:sms:2", "test:email:1") == ["cancelled", "cancelled", "pending"]
    assert ("sms.opted_out", "ok", patient_id, {"cancelled": texts}) in audit(app, "sms.")

    clock.advance(minutes=5)
    assert reply(app, "START").status_code == 200
    with app.app_context():
        assert db.session.get(Patient, patient_id).sms_opted_out_at is None
        # Back in: the booked sessions' reminders are queued again; the test's own two stay cancelled, and
        # the first session's 48-hour reminder, whose time has passed, gives way to its 24-hour one.
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.patient_id == patient_id, OutboxMessage.channel == "sms",
            OutboxMessage.status == "pending")) == texts - 3
    assert [event[0] for event in audit(app, "sms.")][-1] == "sms.opted_in"
    assert_no_phi_in_audit(app)


def test_help_gets_the_help_text_and_unknown_text_changes_nothing(app, patient):
    help_body = reply(app, "help").get_data(as_text=True)
    assert "<Message>Maple Clinic appointment reminders. Call (503) 555-0100 for help. Reply STOP to stop texts." \
           "</Message>" in help_body
    before = snapshot(app, skip={"audit_event", "audit_head"})
    other = reply(app, "Can I bring my sister instead?")
    assert other.status_code == 200 and "<Message>" not in other.get_data(as_text=True)
    assert snapshot(app, skip={"audit_event", "audit_head"}) == before
    assert [event[0] for event in audit(app, "sms.")] == ["sms.help_sent", "sms.reply_unrecognised"]
    assert_no_phi_in_audit(app)


def test_a_number_shared_by_two_patients_acts_on_neither(app, patient, clock):
    patient_id, sessions = patient
    with app.app_context():
        other = create_patient(now=clock())  # a relative on the same phone (registration would ask first)
        db.session.get(Patient, other.id).phone = PHONE
        db.session.commit()
    before = snapshot(app, skip={"audit_event", "audit_head"})
    for word in ("YES", "STOP"):
        assert reply(app, word).status_code == 200
    assert snapshot(app, skip={"audit_event", "audit_head"}) == before
    assert audit(app, "sms.") == [("sms.reply_ambiguous_number", "denied", None, {"reply": "confirm", "patients": 2}),
                                  ("sms.reply_ambiguous_number", "denied", None, {"reply": "stop", "patients": 2})]
    assert confirmation(app, sessions[0]) is None


FORGERIES = {
    "missing": lambda params: "",
    "other token": lambda params: sign(PUBLIC_URL + "/sms/inbound", params, token="not-our-token"),
    "plain http": lambda params: sign("http://clinic.example.org/sms/inbound", params),
    "other body": lambda params: sign(PUBLIC_URL + "/sms/inbound", {**params, "Body": "HELP"}),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_or_missing_signature_is_refused_and_changes_nothing(app, patient, forgery):
    patient_id, _ = patient
    params = {"From": PHONE, "Body": "STOP"}
    before = snapshot(app, skip={"audit_event", "audit_head"})
    response = twilio_post(app, "/sms/inbound", params, signature=FORGERIES[forgery](params))
    assert response.status_code == 403
    assert snapshot(app, skip={"audit_event", "audit_head"}) == before
    assert audit(app, "access.denied") == [
        ("access.denied", "denied", None, {"endpoint": "messaging.sms_inbound", "method": "POST"})]
    assert_no_phi_in_audit(app)


def test_a_webhook_is_refused_when_no_auth_token_is_configured(make_app, patient):
    app = make_app(PUBLIC_URL=PUBLIC_URL)
    assert twilio_post(app, "/sms/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}).status_code == 403


# --- delivery status ------------------------------------------------------------------------------


def test_status_callbacks_record_delivered_and_failed_texts(app, patient, clock):
    patient_id, _ = patient
    queue(app, clock, patient_id, ("test:sms:ok", "sms"), ("test:sms:bad", "sms"))
    with app.app_context():
        for key, sid in (("test:sms:ok", "SM" + "a" * 32), ("test:sms:bad", "SM" + "b" * 32)):
            db.session.execute(update(OutboxMessage).where(OutboxMessage.dedupe_key == key)
                               .values(status="sent", sent_at=clock(), provider_id=sid))
        db.session.commit()

    for sid, status in (("a", "sent"), ("a", "delivered"), ("b", "undelivered"), ("c", "delivered")):
        params = {"MessageSid": "SM" + sid * 32, "MessageStatus": status, "AccountSid": "AC" + "2" * 32}
        if status == "undelivered":
            params["ErrorCode"] = "30003"
        response = twilio_post(app, "/sms/status", params)
        assert response.status_code == 204 and response.get_data() == b""

    assert statuses(app, "test:sms:ok", "test:sms:bad") == ["delivered", "failed"]
    with app.app_context():
        error = db.session.scalar(select(OutboxMessage.last_error).where(OutboxMessage.dedupe_key == "test:sms:bad"))
    assert error == "Twilio reported undelivered, error 30003"
    assert [(action, patient) for action, _, patient, _ in audit(app, "message.")] == [
        ("message.delivered", patient_id), ("message.undelivered", patient_id)]


# --- the confirmation on the pages ------------------------------------------------------------------


def test_the_confirmation_shows_in_words_and_moving_the_session_voids_it(app, patient, clock, login_as):
    _, sessions = patient
    clock.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # Monday 07:00 in the clinic
    assert reply(app, "YES").status_code == 200
    coordinator, nurse = login_as("coordinator"), login_as("nurse")
    pages = {"/today": nurse, "/schedule?start=2026-11-30": coordinator, f"/sessions/{sessions[0]}": coordinator}
    for url, client in pages.items():
        html = client.get(url).get_data(as_text=True)
        assert "Confirmed by text, Mon 30 Nov 07:00" in html, url
    week = coordinator.get("/schedule?start=2026-12-07").get_data(as_text=True)
    assert "Not confirmed" in week and "Confirmed by" not in week

    moved = coordinator.submit(f"/sessions/{sessions[0]}/move", {
        "chair_id": _chair_of(app, sessions[0]), "day": "2026-11-30", "start_time": "13:00"})
    assert moved.status_code == 302, moved.get_data(as_text=True)[:2000]
    for url, client in pages.items():
        html = client.get(url).get_data(as_text=True)
        assert "Not confirmed: moved after the patient confirmed" in html, url
        assert "Confirmed by text" not in html, url

    assert reply(app, "YES").status_code == 200  # confirms the new time
    assert confirmation(app, sessions[0]) == (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), "sms", None)
    assert "Confirmed by text" in coordinator.get(f"/sessions/{sessions[0]}").get_data(as_text=True)


def _chair_of(app, session_id):
    from opsmgr.sessions.models import InfusionSession

    with app.app_context():
        return str(db.session.get(InfusionSession, session_id).chair_id)


def test_staff_record_a_confirmation_by_phone_from_the_session_page(app, patient, login_as):
    patient_id, sessions = patient
    coordinator = login_as("coordinator")
    page = coordinator.get(f"/sessions/{sessions[0]}").get_data(as_text=True)
    assert "Not confirmed" in page and "Record confirmation" in page
    response = coordinator.submit(f"/sessions/{sessions[0]}/confirmation", {"via": "phone"})
    assert response.status_code == 302
    assert confirmation(app, sessions[0]) == (FIRST_START, "phone", coordinator.user.id)
    assert audit(app, "session.confirmed") == [("session.confirmed", "ok", patient_id, {"via": "phone"})]
    page = coordinator.get(f"/sessions/{sessions[0]}").get_data(as_text=True)
    assert "Confirmed by phone, Sat 28 Nov 12:00" in page and "Record confirmation" not in page

    refused = coordinator.submit(f"/sessions/{sessions[1]}/confirmation", {"via": "carrier pigeon"},
                                 follow_redirects=True)
    assert "Choose how the patient confirmed." in refused.get_data(as_text=True)
    assert confirmation(app, sessions[1]) is None
