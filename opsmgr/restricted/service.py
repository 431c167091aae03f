"""Restrict a patient and name the care team; break the glass; review a break-glass event."""
from sqlalchemy import delete, select
from sqlalchemy.orm import joinedload

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import reauthenticate
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.restricted.models import BreakGlassEvent, CareTeamMember, PatientRestriction
from opsmgr.rules.break_glass import REASONS, expires_at, may_break_glass, reason_problems
from opsmgr.rules.findings import Problem


def restriction_of(patient_id):
    return db.session.get(PatientRestriction, patient_id)


def care_team_ids(patient_id):
    return set(db.session.scalars(select(CareTeamMember.user_id).where(CareTeamMember.patient_id == patient_id)))


def set_restriction(patient, *, restricted, care_team, reason, actor, now):
    """Mark `patient` restricted or not and name the care team (active staff ids); audited."""
    active = set(db.session.scalars(select(StaffUser.id).where(StaffUser.id.in_(care_team),
                                                               StaffUser.is_active_account.is_(True))))
    if set(care_team) - active:
        raise DomainError([Problem("care_team", "Choose active staff members only.")])
    if restricted and not active:
        raise DomainError([Problem("care_team", "Name at least one staff member on the care team.")])
    row = restriction_of(patient.id) or PatientRestriction(patient_id=patient.id)
    row.is_restricted, row.reason, row.changed_at, row.changed_by_id = restricted, reason, now, actor.user_id
    db.session.add(row)
    db.session.execute(delete(CareTeamMember).where(CareTeamMember.patient_id == patient.id))
    db.session.add_all(CareTeamMember(patient_id=patient.id, user_id=member, added_at=now) for member in sorted(active))
    db.session.flush()
    record("restricted.changed", actor=actor, now=now, object_type="patient", object_id=patient.id,
           patient_id=patient.id, details={"restricted": restricted, "care_team": sorted(active)})
    return row


def break_glass(patient, user, *, reason, detail, password, actor, now, duration):
    """Open `patient`'s restricted record to `user` for `duration`: a listed reason, words, the password again.

    HIPAA 164.312(a)(2)(ii) emergency access; OpenEMR's break-glass (reliability.md §3.3). Refusals are audited.
    """
    if not may_break_glass(user.role):
        record("break_glass.refused", actor=actor, now=now, outcome="denied", patient_id=patient.id,
               details={"break_glass": True, "why": "role"})
        raise DomainError([Problem(None, "Your role cannot break the glass; ask the care team.")], audited=True)
    problems = [Problem(field, message) for field, message in reason_problems(reason, detail)]
    if problems:
        raise DomainError(problems)
    if not reauthenticate(user, password, ip=actor.ip, now=now, purpose="break_glass"):
        record("break_glass.refused", actor=actor, now=now, outcome="denied", patient_id=patient.id,
               details={"break_glass": True, "why": "password"})
        raise DomainError([Problem("password", "That password is not correct.")], audited=True)
    event = BreakGlassEvent(patient_id=patient.id, user_id=user.id, reason=reason, detail=detail, started_at=now,
                            expires_at=expires_at(now, duration))
    db.session.add(event)
    db.session.flush()
    record("break_glass.opened", actor=actor, now=now, object_type="break_glass_event", object_id=event.id,
           patient_id=patient.id, details={"break_glass": True, "event_id": event.id, "reason": reason,
                                           "minutes": int(duration.total_seconds() // 60)})
    return event


def events_to_review():
    """Break-glass events no admin has reviewed yet, oldest first (the admins' home)."""
    return db.session.scalars(select(BreakGlassEvent).where(BreakGlassEvent.reviewed_at.is_(None))
                              .options(joinedload(BreakGlassEvent.user), joinedload(BreakGlassEvent.patient))
                              .order_by(BreakGlassEvent.started_at, BreakGlassEvent.id)).all()


def review(event, *, actor, now):
    """An admin has looked at the event: it leaves the admins' home; audited."""
    if event.reviewed_at is not None:
        raise DomainError([Problem(None, "This break-glass event was already reviewed.")])
    event.reviewed_at, event.reviewed_by_id = now, actor.user_id
    db.session.flush()
    record("break_glass.reviewed", actor=actor, now=now, object_type="break_glass_event", object_id=event.id,
           patient_id=event.patient_id, details={"break_glass": True, "event_id": event.id})
    return event


REASON_LABELS = REASONS
