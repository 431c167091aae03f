"""What Twilio tells us: a patient's SMS reply, and the delivery status of a text we sent.

The views (opsmgr.messaging.views) reach here only with a verified X-Twilio-Signature. Each reply
is audited by what it did, never with its text or the phone number: the patient, when one number
names exactly one patient, and ids.
"""
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import current_app
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from opsmgr.audit.service import Actor, record
from opsmgr.extensions import db
from opsmgr.messaging import confirmations
from opsmgr.outbox.models import OutboxMessage
from opsmgr.outbox.service import cancel_pending_for_patient, mark_delivered, mark_undelivered
from opsmgr.patients.models import Patient
from opsmgr.rules import identity
from opsmgr.rules.reminders import HELP_REPLY, Reply, parse_reply
from opsmgr.rules.scheduling import clock_text, short_day

#: Twilio's MessageStatus values that end a text's delivery, and what they mean here.
DELIVERED = {"delivered"}
UNDELIVERED = {"failed", "undelivered"}
CONFIRMED_REPLY = "{clinic_name}: thank you, your appointment on {day} at {time} is confirmed."
#: Twilio's ErrorCode is a number; anything else is not kept.
ERROR_CODE = re.compile(r"\d{1,6}")
NOTHING_TO_CONFIRM = "{clinic_name}: we found no appointment in the next 3 days to confirm. Call {clinic_phone}."


def twilio_actor(ip):
    """Who acts on a webhook: Twilio, relaying the patient (no staff member)."""
    return Actor(None, "twilio", None, ip)


@dataclass(frozen=True)
class Answer:
    """What a reply did (the audit action) and the text to send back, if any."""

    action: str
    reply: str | None = None
    #: The audit details: ids and counts only.
    details: dict | None = None


def handle_reply(from_number, text, *, actor, now):
    """Act on one SMS reply from `from_number` (E.164); returns the Answer. Flushes, never commits."""
    patients = _patients_with(from_number)
    meaning = parse_reply(text)
    if len(patients) != 1:
        action = "sms.reply_unknown_number" if not patients else "sms.reply_ambiguous_number"
        record(action, actor=actor, now=now, outcome="denied",
               details={"reply": meaning.value if meaning else "other", "patients": len(patients)})
        return Answer(action, _help() if meaning == Reply.HELP else None)
    patient = patients[0]
    if meaning == Reply.CONFIRM:
        answer = _confirm(patient, now=now)
    elif meaning == Reply.STOP:
        answer = _opt_out(patient, now=now)
    elif meaning == Reply.START:
        patient.sms_opted_out_at = None
        answer = Answer("sms.opted_in")
    elif meaning == Reply.HELP:
        answer = Answer("sms.help_sent", _help())
    else:
        answer = Answer("sms.reply_unrecognised")
    record(answer.action, actor=actor, now=now, object_type="patient", object_id=patient.id,
           patient_id=patient.id, details=answer.details)
    db.session.flush()
    return answer


def _patients_with(number):
    """Patients whose phone is exactly this E.164 number (at most two: more than one is already ambiguous)."""
    key = identity.phone_key(number)
    if not key or not (number or "").startswith("+"):
        return []
    return db.session.scalars(select(Patient).where(Patient.phone_key == key, Patient.phone == number)
                              .order_by(Patient.id).limit(2)).all()


def _confirm(patient, *, now):
    visit = confirmations.next_session_to_confirm(patient.id, now=now)
    quiet = patient.sms_opted_out_at is not None  # after STOP only the carrier's own replies go out
    if visit is None:
        return Answer("sms.reply_nothing_to_confirm", None if quiet else _text(NOTHING_TO_CONFIRM))
    confirmations.confirm(visit, via="sms", recorded_by_id=None, now=now)
    zone = current_app.config["CLINIC_TIMEZONE"]
    day = short_day(visit.starts_at.astimezone(ZoneInfo(zone)).date())
    reply = None if quiet else _text(CONFIRMED_REPLY, day=day, time=clock_text(visit.starts_at, zone))
    return Answer("session.confirmed", reply, {"via": "sms", "session_id": visit.id})


def _opt_out(patient, *, now):
    """STOP: no text from now on (the pending ones are cancelled in this transaction) until START."""
    if patient.sms_opted_out_at is None:
        patient.sms_opted_out_at = now
    cancelled = cancel_pending_for_patient(patient.id, "sms", reason="the patient replied STOP", now=now)
    return Answer("sms.opted_out", None, {"cancelled": cancelled})


def _clinic():
    config = current_app.config
    return {"clinic_name": config["CLINIC_NAME"], "clinic_phone": config.get("CLINIC_PHONE") or "the clinic"}


def _text(pattern, **values):
    return pattern.format(**_clinic(), **values)


def _help():
    return SandboxedEnvironment(autoescape=False).from_string(HELP_REPLY).render(**_clinic())


def record_status(message_sid, status, error_code, *, actor, now):
    """A delivery status callback: delivered, or failed/undelivered with Twilio's error code.

    Returns whether a message changed; an unknown sid or a status that ends nothing changes nothing."""
    if status not in DELIVERED | UNDELIVERED or not message_sid:
        return False
    error_code = error_code if error_code and ERROR_CODE.fullmatch(error_code) else None
    message = db.session.execute(select(OutboxMessage.id, OutboxMessage.patient_id)
                                 .where(OutboxMessage.provider_id == message_sid)).first()
    if message is None:
        return False
    if status in DELIVERED:
        changed = mark_delivered(message_sid, now=now)
    else:
        code = f", error {error_code}" if error_code else ""
        changed = mark_undelivered(message_sid, f"Twilio reported {status}{code}", now=now)
    if changed:
        record("message.delivered" if status in DELIVERED else "message.undelivered", actor=actor, now=now,
               object_type="outbox_message", object_id=message.id, patient_id=message.patient_id,
               details={"status": status, **({"error_code": error_code} if error_code else {})})
    return changed
