"""The demo clinic's worklist: after the seed's commit planned follow-ups and queued reminders, give it
what a real week has — one session confirmed by text and others not, a failed delivery, a call passed to
a physician, a call already done, a booster review from a PHQ-9 taken by phone, and tomorrow's reminders
due at once (so the outbox folder shows them whatever the hour). Flushes only."""
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from opsmgr.demo.service import DEMO_ACTOR
from opsmgr.extensions import db
from opsmgr.followups import worklist
from opsmgr.followups.models import FollowUp
from opsmgr.messaging.models import SessionConfirmation
from opsmgr.outbox.models import OutboxMessage
from opsmgr.patients.models import Patient
from opsmgr.rules.scheduling import clinic_day
from opsmgr.scores.models import PHONE, PHQ9
from opsmgr.scores.service import record_score
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession

FAILED = "DeliveryError: the provider refused the number as unable to receive texts (21614)"


def seed_demo_worklist(*, now):
    """Returns what it added, by name."""
    added = {}
    upcoming = list(db.session.scalars(
        select(InfusionSession).where(InfusionSession.status == "scheduled", InfusionSession.starts_at > now)
        .order_by(InfusionSession.starts_at, InfusionSession.id).limit(3)))
    if upcoming:
        first = upcoming[0]
        db.session.add(SessionConfirmation(session_id=first.id, starts_at=first.starts_at,
                                           confirmed_at=now - timedelta(hours=1), via="sms"))
        added["confirmed_session"] = first.id
    # The next clinic day's reminders are due now in the demo, whatever the hour (a real clinic's wait for
    # their time and for the end of quiet hours), so the scheduler writes them to the outbox folder at once.
    zone = current_app.config["CLINIC_TIMEZONE"]
    today = clinic_day(now, zone)
    pending = list(db.session.execute(
        select(OutboxMessage, InfusionSession.starts_at)
        .join(InfusionSession, InfusionSession.id == OutboxMessage.session_id)
        .where(OutboxMessage.status == "pending", OutboxMessage.dedupe_key.like("reminder:%"))))
    days = sorted({clinic_day(starts_at, zone) for _, starts_at in pending} - {today})
    due_now = 0
    for reminder, starts_at in pending:
        if days and clinic_day(starts_at, zone) == days[0] and ":24h:" in reminder.dedupe_key:
            reminder.available_at = now
            due_now += 1
    added["reminders_due_now"] = due_now
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.status == "pending", OutboxMessage.channel == "sms")
        .order_by(OutboxMessage.available_at.desc(), OutboxMessage.id).limit(1))
    if message is not None:
        message.status, message.attempts, message.last_error = "failed", 1, FAILED
        added["failed_delivery"] = message.id
    calls = list(db.session.scalars(select(FollowUp).where(FollowUp.status == "open", FollowUp.kind == "checkin_call")
                                    .order_by(FollowUp.due_at, FollowUp.id).limit(2)))
    if calls:
        worklist.escalate(calls[0], note="Reports nausea and a headache since the infusion; asks to speak to a "
                                         "doctor.", actor=DEMO_ACTOR, now=now)
        added["escalated"] = calls[0].id
    if len(calls) > 1:
        worklist.complete(calls[1], outcome="Reached. Slept well, no nausea; escort drove them home as planned.",
                          actor=DEMO_ACTOR, now=now)
        added["done"] = calls[1].id
    patient = _maintenance_patient()
    if patient is not None:
        zone = current_app.config["CLINIC_TIMEZONE"]
        earlier = now - timedelta(days=21)
        record_score(patient, PHQ9, [1, 1, 0, 1, 1, 0, 0, 0, 0], taken_at=earlier, source=PHONE, actor=DEMO_ACTOR,
                     now=now, difficulty=0)
        record_score(patient, PHQ9, [2, 2, 1, 2, 1, 1, 1, 1, 0], taken_at=now - timedelta(hours=2), source=PHONE,
                     actor=DEMO_ACTOR, now=now, difficulty=1)
        added["booster_scores"] = f"{patient.id} ({clinic_day(earlier, zone)} and today)"
    db.session.flush()
    return added


def _maintenance_patient():
    """A patient whose induction ended and who has no session booked in the next week (a booster candidate)."""
    booked = select(InfusionSession.patient_id).where(InfusionSession.status == "scheduled")
    return db.session.scalar(
        select(Patient).join(InfusionSeries, InfusionSeries.patient_id == Patient.id)
        .where(InfusionSeries.status == "completed", Patient.id.not_in(booked))
        .order_by(Patient.id).limit(1))
