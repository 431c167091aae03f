"""Entered in error: a reading, a weight, a medication or a contraindication marked wrong, with who,
when and why. The row stays (shown struck through with its mark) and no longer counts: not in the
alerts, the vitals due, the timeline or the discharge (readings), nor in the chart's latest weight,
the checklist's medications or the count of contraindications. The mark is one-way; a correct
value is entered as a new entry.

A reading belongs to its session: it may be marked until the session is signed; the signed record
keeps it with its mark, and afterwards only an addendum corrects it. Patient entries belong to the
chart and may be marked at any time: no signed record reads them (a session keeps its own copy:
today's weight in its checklist and dose, the medication changes in its checklist), so a signed
record still shows the values it was signed with.
"""
from sqlalchemy import select, update

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.infusion.models import InChairAlert
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import PatientContraindication, PatientMedication, PatientWeight
from opsmgr.rules import corrections as rules
from opsmgr.rules.findings import Problem
from opsmgr.sessions.models import InfusionSession

#: The chart's entries, by the name their URLs use.
PATIENT_ENTRIES = {"weights": PatientWeight, "medications": PatientMedication,
                   "contraindications": PatientContraindication}
AUDIT_ACTIONS = {PatientWeight: "patient.weight_entered_in_error",
                 PatientMedication: "patient.medication_entered_in_error",
                 PatientContraindication: "patient.contraindication_entered_in_error"}


class CorrectionError(DomainError):
    """A refused mark, with the field it concerns (None: the whole form)."""


def marked_by(patient):
    """{staff id: name} of whoever marked the chart's entries entered in error (no statement when none is)."""
    ids = {entry.entered_in_error_by_id for entries in (patient.weights, patient.medications, patient.contraindications)
           for entry in entries if entry.entered_in_error_by_id is not None}
    if not ids:
        return {}
    return {row.id: row.full_name for row in db.session.execute(
        select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(ids)))}


def mark_reading_in_error(visit, reading, *, reason, actor, now):
    """Mark a reading of this session entered in error; its alerts are withdrawn with it. Refused once
    the session is signed (the refusal is audited): then only an addendum can correct it."""
    # Lock the session row, as signing does, so a mark and a signature never cross.
    db.session.execute(select(InfusionSession.id).where(InfusionSession.id == visit.id).with_for_update())
    signed = db.session.scalar(select(SessionNote.id).where(SessionNote.session_id == visit.id,
                                                            SessionNote.signed_at.is_not(None))) is not None
    problems = _problems(reading, reason, actor, signed=signed)
    if signed:
        _audit_session("vitals.entered_in_error_refused", visit, actor, now, outcome="denied",
                       vital_sign_id=reading.id, reason="signed")
        raise CorrectionError(problems, audited=True)
    if problems:
        raise CorrectionError(problems)
    _mark(reading, reason, actor, now)
    withdrawn = db.session.scalars(select(InChairAlert.code).where(InChairAlert.vital_sign_id == reading.id)).all()
    _audit_session("vitals.entered_in_error", visit, actor, now, vital_sign_id=reading.id,
                   withdrawn_alerts=list(withdrawn))
    return reading


def mark_entry_in_error(entry, *, reason, actor, now):
    """Mark a weight, medication or contraindication of the chart entered in error."""
    problems = _problems(entry, reason, actor, signed=False)
    if problems:
        raise CorrectionError(problems)
    _mark(entry, reason, actor, now)
    record(AUDIT_ACTIONS[type(entry)], actor=actor, now=now, object_type=entry.__tablename__, object_id=entry.id,
           patient_id=entry.patient_id)
    return entry


def _problems(entry, reason, actor, *, signed):
    return rules.mark_problems(reason=reason, role=actor.role, user_id=actor.user_id, author_id=entry.recorded_by_id,
                               already_marked=entry.is_entered_in_error, signed=signed)


def _mark(entry, reason, actor, now):
    """Write the mark only if none is there yet, so two people marking at once never both succeed."""
    model = type(entry)
    done = db.session.execute(
        update(model).where(model.id == entry.id, model.entered_in_error_at.is_(None))
        .values(entered_in_error_at=now, entered_in_error_by_id=actor.user_id,
                entered_in_error_reason=reason.strip()))
    if done.rowcount != 1:
        raise CorrectionError([Problem(None, rules.ALREADY)])


def _audit_session(action, visit, actor, now, outcome="ok", **details):
    record(action, actor=actor, now=now, outcome=outcome, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details=details)

