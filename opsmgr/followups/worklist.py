"""The coordinator's worklist (and the physician's reviews): what is due, and working an item.

Read side: open items due by a day, delivery problems, patients no reminder can reach and sessions
not confirmed a day ahead, each in a constant number of statements. Write side: done (with an
outcome, a phone PHQ-9, or the REMS form's submission), not reached (retry next clinic day; the
policy's count escalates), escalate to a physician. Every action is audited with ids and names only.
"""
from dataclasses import dataclass
from datetime import date, time, timedelta

from flask import current_app
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import joinedload

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.followups.models import FollowUp
from opsmgr.rules import followups as plan_rules
from opsmgr.rules import reminders as reminder_rules
from opsmgr.rules.findings import Problem
from opsmgr.rules.scheduling import clinic_day, local_to_utc

#: What each kind is called on the list.
KIND_LABELS = {
    "checkin_call": "Next-day check-in call",
    "first_session_call": "72-hour call after a first session",
    "phq9_request": "PHQ-9 request",
    "induction_review": "End-of-induction review",
    "booster_review": "Booster review (PHQ-9 rise)",
    "rems_form": "REMS patient monitoring form",
    "unsigned_note": "Note still unsigned",
}
#: Kinds worked by phone, where a PHQ-9 may be taken.
CALL_KINDS = frozenset({"checkin_call", "first_session_call", "phq9_request"})
#: How far back delivery problems stay on the list.
PROBLEM_WINDOW = timedelta(days=7)
#: Unconfirmed sessions starting within this show on the list (issue 12: 24 h ahead).
CONFIRM_WINDOW = timedelta(hours=24)
#: Upcoming sessions checked for a patient no reminder can reach.
REACH_WINDOW = timedelta(days=7)


class FollowUpError(DomainError):
    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


@dataclass(frozen=True)
class Criteria:
    kind: str | None = None
    due_by: date | None = None
    patient: str = ""


@dataclass
class Worklist:
    items: list
    #: All open items for the criteria (only PAGE_SIZE of them are in `items`).
    items_total: int
    counts: dict
    delivery_problems: list
    unreachable: list
    unconfirmed: list
    due_by: date

    @property
    def total(self):
        return self.items_total + len(self.delivery_problems) + len(self.unreachable) + len(self.unconfirmed)


def _end_of(day, zone):
    return local_to_utc(day + timedelta(days=1), time(0), zone)


#: Items shown at once; the rest are counted and reached through the filters (oldest are shown first).
PAGE_SIZE = 200


def _due(role, due_by, zone):
    """An open item for `role` that shows by the end of `due_by` (from its reminder time, else its due time)."""
    shown_from = func.coalesce(FollowUp.remind_at, FollowUp.due_at)
    return and_(FollowUp.for_role == role, FollowUp.status == "open", shown_from < _end_of(due_by, zone))


def _open_query(role, due_by, zone, criteria=None):
    """Open items for `role` shown by the end of `due_by` (and matching `criteria`), oldest first."""
    from opsmgr.patients.models import Patient
    from opsmgr.patients.service import search_query

    query = select(FollowUp).where(_due(role, due_by, zone))
    if criteria is not None and criteria.kind:
        query = query.where(FollowUp.kind == criteria.kind)
    if criteria is not None and criteria.patient.strip():  # the patient search's own matching (names, MRN)
        matching = search_query(criteria.patient).with_only_columns(Patient.id).order_by(None)
        query = query.where(FollowUp.patient_id.in_(matching))
    return query.order_by(FollowUp.due_at, FollowUp.id)


def _open_items(role, due_by, zone, criteria=None, limit=None):
    # Many-to-one: joined into the one statement (an empty list and a long one cost the same).
    query = _open_query(role, due_by, zone, criteria).options(joinedload(FollowUp.patient),
                                                              joinedload(FollowUp.session))
    return list(db.session.scalars(query if limit is None else query.limit(limit)))


def _counts_by_kind(role, due_by, zone, criteria):
    found = _open_query(role, due_by, zone, criteria).order_by(None).subquery()
    return dict(db.session.execute(select(found.c.kind, func.count()).group_by(found.c.kind)).all())


def coordinator_worklist(criteria, *, now):
    """The coordinator's list for `criteria` (due by today unless asked), in a fixed number of statements."""
    from opsmgr.outbox.models import OutboxMessage
    from opsmgr.patients.models import Patient
    from opsmgr.sessions.models import InfusionSession

    zone = current_app.config["CLINIC_TIMEZONE"]
    today = clinic_day(now, zone)
    due_by = criteria.due_by or today
    items = _open_items("coordinator", due_by, zone, criteria, limit=PAGE_SIZE)
    counts = _counts_by_kind("coordinator", due_by, zone, criteria)
    total = sum(counts.values())
    problems = list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.channel.in_(("email", "sms")),
                                    or_(OutboxMessage.status == "failed", OutboxMessage.possibly_duplicate.is_(True)),
                                    OutboxMessage.created_at >= now - PROBLEM_WINDOW)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)))
    upcoming = list(db.session.scalars(
        select(InfusionSession).where(InfusionSession.status == "scheduled", InfusionSession.starts_at > now,
                                      InfusionSession.starts_at < now + REACH_WINDOW)
        .options(joinedload(InfusionSession.patient), joinedload(InfusionSession.chair))
        .order_by(InfusionSession.starts_at, InfusionSession.id)))
    confirmations = _confirmations([s.id for s in upcoming])
    patients = {p.id: p for p in db.session.scalars(
        select(Patient).where(Patient.id.in_({m.patient_id for m in problems if m.patient_id})))} if problems else {}
    unreachable, unconfirmed = [], []
    for visit in upcoming:
        reason = unreachable_reason(visit.patient)
        if reason:
            unreachable.append((visit, reason))
        confirmation = confirmations.get(visit.id)
        confirmed = confirmation is not None and confirmation.starts_at == visit.starts_at
        if not confirmed and visit.starts_at <= now + CONFIRM_WINDOW:
            unconfirmed.append(visit)
    if criteria.kind:
        problems, unreachable, unconfirmed = [], [], []
    counts.update({"delivery": len(problems), "unreachable": len(unreachable), "unconfirmed": len(unconfirmed)})
    return Worklist(items=items, items_total=total, counts=counts,
                    delivery_problems=[(m, patients.get(m.patient_id)) for m in problems],
                    unreachable=unreachable, unconfirmed=unconfirmed, due_by=due_by)


def _confirmations(session_ids):
    from opsmgr.messaging.models import SessionConfirmation

    if not session_ids:
        return {}
    return {c.session_id: c for c in db.session.scalars(
        select(SessionConfirmation).where(SessionConfirmation.session_id.in_(session_ids)))}


def unreachable_reason(patient):
    """Why no reminder reaches this patient (None when one does), in words."""
    choice = reminder_rules.reminder_channel(
        patient.reminder_channel, consent_on=patient.contact_consent_on, phone=patient.phone or "",
        email=patient.email or "", sms_opted_out=patient.sms_opted_out_at is not None)
    return choice.reason


def physician_items(*, now):
    """Items escalated to a physician (longest waiting first), then reviews due (end of induction, booster,
    unsigned notes), oldest first, and {session id: note status} of the unsigned-note reviews: one statement,
    the patients and notes joined in."""
    from opsmgr.notes.models import SessionNote

    zone = current_app.config["CLINIC_TIMEZONE"]
    due = _due("physician", clinic_day(now, zone), zone)
    escalated = FollowUp.status == "escalated"
    rows = db.session.execute(
        select(FollowUp, SessionNote.status).where(or_(escalated, due)).options(joinedload(FollowUp.patient))
        .outerjoin(SessionNote, and_(FollowUp.kind == "unsigned_note", SessionNote.session_id == FollowUp.session_id))
        .order_by(case((escalated, 0), else_=1), case((escalated, FollowUp.updated_at), else_=FollowUp.due_at),
                  FollowUp.id)).all()
    return [item for item, _ in rows], {item.session_id: status for item, status in rows if status is not None}


def load_item(item_id):
    item = db.session.scalar(select(FollowUp).where(FollowUp.id == item_id)
                             .options(joinedload(FollowUp.patient), joinedload(FollowUp.session)))
    if item is None:
        raise LookupError(item_id)
    return item


def next_session(patient_id, now):
    """The patient's next booked session (None when nothing is booked): where "Reschedule" leads."""
    from opsmgr.sessions.models import InfusionSession

    return db.session.scalar(
        select(InfusionSession).where(InfusionSession.patient_id == patient_id, InfusionSession.status == "scheduled",
                                      InfusionSession.starts_at > now)
        .order_by(InfusionSession.starts_at, InfusionSession.id).limit(1))


def standing_words(item, now):
    """"2 days overdue", "due today"… for an item (the REMS form counts from its own overdue day)."""
    zone = current_app.config["CLINIC_TIMEZONE"]
    return plan_rules.overdue_words(item.due_at, now, zone)


def is_overdue(item, now):
    return item.overdue_at is not None and now >= item.overdue_at


# --------------------------------------------------------------------------------------------
# Working an item
# --------------------------------------------------------------------------------------------

def _check_open(item, version):
    if not item.is_open:
        raise FollowUpError("This item was already closed by a colleague; nothing was changed.")
    if version is not None and version != item.version:
        raise FollowUpError("A colleague changed this item since you opened it; review it and try again.")


def _audit(action, item, actor, now, **details):
    record(action, actor=actor, now=now, object_type="follow_up", object_id=item.id, patient_id=item.patient_id,
           details={"kind": item.kind, **details})


def complete(item, *, outcome, actor, now, version=None, phq9=None, phq9_difficulty=None, rems_submitted_on=None,
             rems_method=None):
    """Done, with what happened. A PHQ-9 taken by phone (nine answers) joins the patient's scores (an
    item 9 above the threshold raises the physician's same-day task); a REMS form closes only with its
    submission date and method."""
    _check_open(item, version)
    outcome = (outcome or "").strip()
    if not outcome:
        raise FollowUpError("Say what happened (for example: reached, doing well, no new symptoms).", "outcome")
    if item.kind == "rems_form":
        session_on = clinic_day(item.session.starts_at, current_app.config["CLINIC_TIMEZONE"])
        problems = plan_rules.rems_submission_problems(rems_submitted_on, rems_method, session_on=session_on,
                                                       today=clinic_day(now, current_app.config["CLINIC_TIMEZONE"]))
        if problems:
            raise DomainError(list(problems))
        item.rems_submitted_on, item.rems_method = rems_submitted_on, rems_method
    score = None
    if phq9 is not None:
        from opsmgr.scores.models import PHONE, PHQ9
        from opsmgr.scores.service import record_score

        score = record_score(item.patient, PHQ9, phq9, taken_at=now, source=PHONE, actor=actor, now=now,
                             difficulty=phq9_difficulty)
    item.status, item.outcome, item.closed_at, item.closed_by_id, item.updated_at = \
        "done", outcome, now, actor.user_id, now
    db.session.flush()
    _audit("follow_up.done", item, actor, now, phq9=score is not None, escalated=bool(item.escalation_note))
    return item


def not_reached(item, *, actor, now, version=None):
    """Not reached: try again at the next clinic day's opening; the policy's count of misses escalates."""
    from opsmgr.policy.service import current_policy
    from opsmgr.schedule.clinic import load_calendar

    _check_open(item, version)
    if item.status == "escalated":
        raise FollowUpError("This item is with a physician now.")
    _, policy = current_policy()
    item.misses += 1
    nxt = plan_rules.after_not_reached(now, item.misses, load_calendar(), policy)
    zone = current_app.config["CLINIC_TIMEZONE"]
    item.due_at, item.remind_at, item.updated_at = nxt.due_at, None, now
    item.overdue_at = plan_rules.start_of_next_day(nxt.due_at, zone)  # overdue again from the day after the retry
    if nxt.escalate:
        item.status = "escalated"
        item.escalation_note = f"Not reached {item.misses} times."
    db.session.flush()
    _audit("follow_up.not_reached", item, actor, now, misses=item.misses, escalated=nxt.escalate)
    return item


def escalate(item, *, note, actor, now, version=None, physician_id=None):
    """Hand the item to a physician (theirs, or any physician's when none is named), with why."""
    _check_open(item, version)
    note = (note or "").strip()
    if not note:
        raise FollowUpError("Say why a physician should look at this.", "note")
    if item.status == "escalated":
        raise FollowUpError("This item is already with a physician.")
    item.status, item.escalation_note = "escalated", note[:500]
    item.escalated_to_id, item.updated_at = physician_id, now
    db.session.flush()
    _audit("follow_up.escalated", item, actor, now, to=physician_id)
    return item

