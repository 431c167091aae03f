"""Planning follow-ups and patient reminders, in the transaction that makes them due.

A patient's plan is recomputed from facts (their series, sessions, note states and PHQ-9 scores) by
the pure rules (rules.followups, rules.reminders) and met with what is stored (`reconcile`): new
items are added, items no longer wanted are cancelled, worked items are never touched. Reminders are
rows of the message queue (opsmgr.outbox), keyed by session, offset and start, so a moved session's
old reminders are cancelled and new ones queued in the same transaction, and a reminder whose time
has passed its session's start is expired, never sent late.

When: every commit that changed a patient's sessions, series, scores, note states or contact details
re-plans that patient first (`_replan_before_commit`, a session hook: no path that changes those
facts can forget it), and the scheduler's `plan_due` job re-plans patients with sessions around
today (reminders of sessions booked long ago, expiries).

Decision: an item whose due time is more than `STALE_AFTER` in the past when first planned is not
added (a clinic upgrading, or a session recorded long after it happened, does not flood the worklist
with old calls); an item already stored stays as it is.
"""
from collections import defaultdict
from datetime import timedelta

from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session, selectinload

from opsmgr.extensions import db
from opsmgr.followups.models import OPEN, FollowUp
from opsmgr.rules import followups as plan_rules
from opsmgr.rules import reminders as reminder_rules

STALE_AFTER = timedelta(days=14)
_PENDING = "followups.replan"  # session.info key: patient ids to re-plan before commit
_RUNNING = "followups.replanning"


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------

def _facts(patient_ids):
    """{patient id: (series facts, PHQ-9 score facts)} plus the sessions by id, in four statements."""
    from opsmgr.notes.models import SessionNote
    from opsmgr.scores.service import scores_for
    from opsmgr.series.models import InfusionSeries

    series_rows = db.session.scalars(
        select(InfusionSeries).where(InfusionSeries.patient_id.in_(patient_ids))
        .options(selectinload(InfusionSeries.protocol), selectinload(InfusionSeries.sessions))).all()
    session_ids = [s.id for one in series_rows for s in one.sessions]
    note_status = dict(db.session.execute(
        select(SessionNote.session_id, SessionNote.status).where(SessionNote.session_id.in_(session_ids))).all()) \
        if session_ids else {}
    by_patient = defaultdict(list)
    sessions = {}
    for one in series_rows:
        protocol = one.protocol
        facts = []
        for visit in one.sessions:
            sessions[visit.id] = visit
            discharged = visit.status_changed_at if visit.status == "discharged" else None
            facts.append(plan_rules.SessionFacts(id=visit.id, starts_at=visit.starts_at, ends_at=visit.ends_at,
                                                 status=visit.status, discharged_at=discharged,
                                                 note_status=note_status.get(visit.id)))
        phases = [(phase.get("weeks", 0), phase.get("per_week", 1)) for phase in protocol.phases or ()]
        induction = plan_rules.induction_size(one.planned_count, phases, protocol.review_week,
                                              is_induction="booster" not in protocol.code)
        by_patient[one.patient_id].append(plan_rules.SeriesFacts(
            id=one.id, route=protocol.route, status=one.status, induction_sessions=induction,
            sessions=tuple(facts)))
    scores = defaultdict(list)
    for score in scores_for(list(patient_ids)):
        if score.instrument == "PHQ-9" and score.total is not None:
            scores[score.patient_id].append(plan_rules.ScoreFacts(id=score.id, taken_at=score.taken_at,
                                                                  total=score.total))
    return by_patient, scores, sessions


# --------------------------------------------------------------------------------------------
# Re-planning
# --------------------------------------------------------------------------------------------

def replan(patient_ids, *, now):
    """Re-plan the follow-ups and reminders of these patients in the caller's transaction (flushes)."""
    from opsmgr.patients.models import Patient
    from opsmgr.policy.service import current_policy

    patient_ids = sorted(set(patient_ids))
    if not patient_ids:
        return
    _, policy = current_policy()
    zone = current_app.config["CLINIC_TIMEZONE"]
    series_by_patient, scores_by_patient, sessions = _facts(patient_ids)
    stored = defaultdict(dict)
    for item in db.session.scalars(select(FollowUp).where(FollowUp.patient_id.in_(patient_ids))):
        stored[item.patient_id][item.key] = item
    patients = {p.id: p for p in db.session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))}
    for patient_id in patient_ids:
        _replan_items(patient_id, series_by_patient[patient_id], scores_by_patient[patient_id],
                      stored[patient_id], policy, zone, now)
    _replan_reminders(patients, series_by_patient, sessions, policy, zone, now)
    db.session.flush()


def _closed_at(items, kind):
    closed = [item.closed_at for item in items.values() if item.kind == kind and item.closed_at is not None]
    return max(closed, default=None)


def _replan_items(patient_id, series, scores, stored, policy, zone, now):
    planned = plan_rules.plan(patient_id, series, scores, policy, zone,
                              phq9_request_closed_at=_closed_at(stored, plan_rules.Kind.PHQ9_REQUEST),
                              booster_review_closed_at=_closed_at(stored, plan_rules.Kind.BOOSTER_REVIEW))
    wanted = [item for item in planned if item.key in stored or item.due_at >= now - STALE_AFTER]
    existing = [plan_rules.ExistingItem(key=item.key, status=item.status,
                                        expires_at=item.expires_at, id=item.id) for item in stored.values()]
    result = plan_rules.reconcile(existing, wanted, now)
    for cancellation in result.to_cancel:
        item = stored[cancellation.item.key]
        item.status = "expired" if cancellation.reason == "expired" else "cancelled"
        item.cancel_reason = "resolved" if item.kind in RESOLVED_BY_FACTS else cancellation.reason
        item.updated_at = now
    for want in result.to_add:
        db.session.add(FollowUp(
            key=want.key, kind=want.kind.value, patient_id=patient_id, session_id=want.session_id,
            series_id=want.series_id, score_id=want.score_id, for_role=want.for_role, due_at=want.due_at,
            overdue_at=want.overdue_at, remind_at=want.remind_at, expires_at=want.expires_at, status="open",
            misses=0, escalation_note="", outcome="", cancel_reason="", created_at=now, updated_at=now))


#: Kinds the facts close by themselves: a signed note ends its reminder, a review a physician saw…
RESOLVED_BY_FACTS = frozenset({plan_rules.Kind.UNSIGNED_NOTE.value})


def _replan_reminders(patients, series_by_patient, sessions, policy, zone, now):
    from opsmgr.outbox.models import OutboxMessage
    from opsmgr.outbox.service import cancel_pending, enqueue_message

    session_ids = list(sessions)
    stored = defaultdict(dict)
    if session_ids:
        rows = db.session.execute(
            select(OutboxMessage.dedupe_key, OutboxMessage.status, OutboxMessage.expires_at, OutboxMessage.session_id)
            .where(OutboxMessage.session_id.in_(session_ids), OutboxMessage.dedupe_key.like("reminder:%")))
        for key, status, expires_at, session_id in rows:
            # A cancelled reminder may be wanted again (the patient texted START, a session moved back):
            # it is planned afresh, and enqueueing its key revives the row (outbox.enqueue_message).
            if status != "cancelled":
                stored[session_id][key] = plan_rules.ExistingItem(key=key, status=status, expires_at=expires_at)
    texts = None
    for patient_id, series in series_by_patient.items():
        patient = patients[patient_id]
        choice = reminder_rules.reminder_channel(
            patient.reminder_channel, consent_on=patient.contact_consent_on, phone=patient.phone or "",
            email=patient.email or "", sms_opted_out=patient.sms_opted_out_at is not None)
        for one in series:
            for facts in one.sessions:
                wanted = reminder_rules.plan_reminders(facts, policy, zone) if choice.channel else ()
                result = plan_rules.reconcile(stored[facts.id].values(), wanted, now)
                for cancellation in result.to_cancel:
                    cancel_pending(key_prefix=cancellation.item.key, reason=cancellation.reason, now=now)
                for reminder in result.to_add:
                    send_at = reminder_rules.when_to_send(reminder.due_at, reminder.expires_at, now, policy, zone)
                    if send_at is None:
                        continue
                    if texts is None:
                        from opsmgr.messaging import templates

                        texts = templates.saved_texts()
                    subject, body = render_reminder(choice.channel, patient, facts, one.route, policy, zone, texts)
                    enqueue_message(choice.channel, patient.phone if choice.channel == "sms" else patient.email,
                                    body, subject=subject, key=reminder.key, due_at=send_at,
                                    expires_at=reminder.expires_at, patient_id=patient_id, session_id=facts.id,
                                    now=now)


def reminder_values(patient, starts_at, route, policy, zone):
    """The placeholders of a reminder (rules.reminders.PLACEHOLDERS) for one patient and session."""
    from opsmgr.messaging import templates

    needs = reminder_rules.visit_needs(starts_at, route, policy, zone)
    first = (patient.preferred_name or patient.legal_name or "").split()
    return {**reminder_rules.instruction_values(needs), **templates.clinic_values(),
            "first_name": first[0] if first else ""}


def render_reminder(channel, patient, facts, route, policy, zone, texts=None):
    """(subject or None, body) of a reminder, from the clinic's templates (opsmgr.messaging.templates);
    `texts` are the saved templates when the caller loaded them once for many messages."""
    from opsmgr.messaging import templates

    values = reminder_values(patient, facts.starts_at, route, policy, zone)
    if channel == "sms":
        return None, templates.render("reminder_sms", values, texts)
    return (templates.render("reminder_email_subject", values, texts),
            templates.render("reminder_email_body", values, texts))


# --------------------------------------------------------------------------------------------
# The hook: every commit that changed a patient's facts re-plans that patient first
# --------------------------------------------------------------------------------------------

def _watched():
    from opsmgr.notes.models import SessionNote
    from opsmgr.patients.models import Patient
    from opsmgr.scores.models import Score
    from opsmgr.series.models import InfusionSeries
    from opsmgr.sessions.models import InfusionSession

    return {InfusionSession: "patient_id", InfusionSeries: "patient_id", Score: "patient_id", Patient: "id",
            SessionNote: None}


@event.listens_for(Session, "before_flush")
def _note_changed_patients(session, flush_context, instances):
    if session.info.get(_RUNNING):
        return
    watched = _watched()
    pending = session.info.setdefault(_PENDING, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        kind = type(obj)
        if kind not in watched:
            continue
        if obj in session.dirty and not session.is_modified(obj):
            continue
        if watched[kind] is None:  # a note: its session's patient
            visit = getattr(obj, "session", None)
            patient_id = getattr(visit, "patient_id", None)
        else:
            patient_id = getattr(obj, watched[kind])
        if patient_id is not None:
            pending.add(patient_id)


@event.listens_for(Session, "before_commit")
def _replan_before_commit(session):
    from flask import has_app_context

    from opsmgr.core.clock import utcnow

    if session.info.get(_RUNNING) or not has_app_context() or not current_app.config.get("FOLLOWUPS_PLAN", True):
        return
    session.flush()
    patient_ids = session.info.pop(_PENDING, set())
    if not patient_ids:
        return
    session.info[_RUNNING] = True
    try:
        replan(patient_ids, now=utcnow())
    finally:
        session.info.pop(_RUNNING, None)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session):
    session.info.pop(_PENDING, None)


# --------------------------------------------------------------------------------------------
# The scheduler's pass
# --------------------------------------------------------------------------------------------

def plan_due(*, now, horizon=timedelta(days=3)):
    """Re-plan the patients with a session from yesterday to `horizon` ahead, or an open item that may
    have expired; the caller commits."""
    from opsmgr.sessions.models import InfusionSession

    around = select(InfusionSession.patient_id).where(InfusionSession.starts_at >= now - timedelta(days=1),
                                                      InfusionSession.starts_at < now + horizon)
    expiring = select(FollowUp.patient_id).where(FollowUp.status.in_(OPEN), FollowUp.expires_at <= now)
    ids = set(db.session.scalars(around.union(expiring)))
    if ids:
        replan(ids, now=now)
    return len(ids)
