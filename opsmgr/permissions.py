"""Named permission predicates: the one place that says who may do what.

Views guard endpoints with them (``@requires(can_manage_staff)``) and templates call them to
decide what to show. Each takes the user first and, where it matters, the object.
"""
from opsmgr.auth.models import Role
from opsmgr.rules.corrections import may_mark


def _has_role(user, *roles):
    return bool(getattr(user, "is_authenticated", False)) and user.role in {r.value for r in roles}


def is_staff(user):
    """Any signed-in, active staff member."""
    return _has_role(user, *Role)


def can_change_own_password(user):
    return is_staff(user)


def can_view_physician_home(user):
    return _has_role(user, Role.PHYSICIAN)


def can_manage_staff(user):
    return _has_role(user, Role.ADMIN)


def can_change_staff(user, target):
    """Admins manage other accounts; nobody deactivates or demotes themselves."""
    return can_manage_staff(user) and target.id != user.id


def can_view_audit(user):
    return _has_role(user, Role.ADMIN)


def can_export_audit(user):
    return can_view_audit(user)


CLINICAL = (Role.NURSE, Role.PHYSICIAN)
PATIENT_FACING = (Role.NURSE, Role.COORDINATOR, Role.PHYSICIAN)


def can_view_patients(user):
    """Patient lists, demographics and schedules: the clinic's care team, not admins."""
    return _has_role(user, *PATIENT_FACING)


def can_register_patient(user):
    return _has_role(user, *PATIENT_FACING)


def can_edit_demographics(user, patient=None):
    return _has_role(user, *PATIENT_FACING)


def can_view_clinical_background(user, patient=None):
    """Weights, medications, contraindications, consent: clinicians only (coordinators see the schedule)."""
    return _has_role(user, *CLINICAL)


def can_edit_clinical_background(user, patient=None):
    return _has_role(user, *CLINICAL)


def can_mark_entered_in_error(user, entry=None):
    """A reading, weight, medication or contraindication is marked entered in error by the clinician
    who recorded it or by a physician (the endpoint's guard, without an entry: any clinician)."""
    if not _has_role(user, *CLINICAL):
        return False
    return entry is None or may_mark(role=user.role, user_id=user.id, author_id=getattr(entry, "recorded_by_id", None))


def can_order_series(user, patient=None):
    """Only a physician orders a series."""
    return _has_role(user, Role.PHYSICIAN)


def can_stop_series(user, series=None):
    return _has_role(user, Role.PHYSICIAN)


def can_view_schedule(user):
    return _has_role(user, *PATIENT_FACING)


def can_book_sessions(user):
    return _has_role(user, Role.COORDINATOR, Role.PHYSICIAN)


def can_move_session(user, visit=None):
    return _has_role(user, Role.COORDINATOR, Role.PHYSICIAN)


def can_override_same_day(user, visit=None):
    """A second infusion for a patient on one clinic day needs a physician's override with a reason."""
    return _has_role(user, Role.PHYSICIAN)


def can_record_past_session(user):
    """Recording a session that already happened (never booked ahead) is a physician's explicit act."""
    return _has_role(user, Role.PHYSICIAN)


def can_cancel_session(user, visit=None):
    return _has_role(user, *PATIENT_FACING)


def can_mark_no_show(user, visit=None):
    return _has_role(user, *PATIENT_FACING)


def can_record_confirmation(user, visit=None):
    """Record that the patient confirmed a session by phone or in person."""
    return _has_role(user, *PATIENT_FACING)


def can_advance_session(user, visit=None):
    """Check-in and the steps at the chair: nurses and physicians."""
    return _has_role(user, *CLINICAL)


def can_override_finding(user, visit=None):
    """Only a physician overrides a checklist or gate finding (one at a time, with a reason and their password)."""
    return _has_role(user, Role.PHYSICIAN)


def can_order_dose(user, visit=None):
    """A session's own dose, in place of the series dose, is ordered by a physician."""
    return _has_role(user, Role.PHYSICIAN)


def can_resolve_physician_task(user, task=None):
    """Physician tasks (PHQ-9 item 9, an elevated suicide-risk screen) are closed by a physician."""
    return _has_role(user, Role.PHYSICIAN)


def can_manage_clinic(user):
    """Protocols, chairs, opening hours and clinic settings."""
    return _has_role(user, Role.ADMIN)


def can_edit_message_templates(user):
    """The wording of patient reminders (texts and emails): admins."""
    return _has_role(user, Role.ADMIN)


def can_use_calendar_feed(user):
    return _has_role(user, *PATIENT_FACING)


def can_see_note_status(user, visit=None):
    """That a note exists and its status: the care team, coordinators included."""
    return _has_role(user, *PATIENT_FACING)


def can_view_note(user, note=None):
    """A note's content: clinicians only (coordinators see its status, admins nothing)."""
    return _has_role(user, *CLINICAL)


def can_write_note(user, visit=None):
    """Draft, edit and mark complete: nurses and physicians."""
    return _has_role(user, *CLINICAL)


def can_sign_note(user, note=None):
    """Only a physician signs, after re-entering their password (rule 19)."""
    return _has_role(user, Role.PHYSICIAN)


def can_add_addendum(user, note=None):
    """Each clinician signs their own addenda with their password."""
    return _has_role(user, *CLINICAL)


def can_view_unsigned_notes(user):
    return _has_role(user, Role.PHYSICIAN)


def can_work_followups(user):
    """The follow-up worklist: coordinators work it; nurses and physicians may call and close items too."""
    return _has_role(user, *PATIENT_FACING)


def can_download_reports(user, patient=None):
    """Signed PDF summaries: the care team, coordinators included (they send records to referring doctors)."""
    return _has_role(user, *PATIENT_FACING)


def can_preview_reports(user, patient=None):
    """Unsigned DRAFT previews show clinical content not yet signed: clinicians only, never coordinators."""
    return _has_role(user, *CLINICAL)


def can_verify_reports(user):
    """The verification page (a document ID or an uploaded PDF): the care team and coordinators."""
    return _has_role(user, *PATIENT_FACING)


def can_view_outcomes(user):
    """The clinic's outcome page (rates over all patients, no names): physicians and admins."""
    return _has_role(user, Role.PHYSICIAN, Role.ADMIN)


def can_export_patient(user, patient=None):
    """A patient's whole record as FHIR (answering a records request): physicians only; admins do not see
    clinical records. A restricted patient: only the care team, or a physician whose break-glass is open."""
    if not _has_role(user, Role.PHYSICIAN):
        return False
    from opsmgr.patients.models import Patient  # imported on use: permissions import no models

    if not isinstance(patient, Patient):  # the endpoint's guard, before the patient is loaded
        return True
    from opsmgr.restricted.access import may_see

    return may_see(user, patient)


def can_restrict_patients(user, patient=None):
    """Mark a patient restricted and name the care team (a staff member, a public figure): admins and
    physicians (on a restricted record, only its care team or an admin)."""
    return _has_role(user, Role.ADMIN, Role.PHYSICIAN)


def can_break_glass(user, patient=None):
    """Open a restricted record outside its care team, with a reason and the password again: clinicians.
    Coordinators and admins do not break the glass; they are named on the care team when they need it."""
    return _has_role(user, *CLINICAL)


def can_review_break_glass(user):
    """The admins' review of every break-glass event, and the list of restricted records."""
    return _has_role(user, Role.ADMIN)


def can_export_csv(user):
    """Clinic-wide CSV lists (patients, sessions, scores, vitals) for a date range: admins."""
    return _has_role(user, Role.ADMIN)


def can_view_disclosures(user, patient=None):
    """A patient's accounting of disclosures (HIPAA 164.528): physicians and admins."""
    return _has_role(user, Role.PHYSICIAN, Role.ADMIN)


ALL = {
    name: fn for name, fn in globals().items() if name.startswith(("can_", "is_")) and callable(fn)
}
