"""The one place a restricted patient's record is closed to everyone outside its care team.

A before-request hook (after the permission guard) finds the patient a route's URL resolves to — from
`patient_id`, or the session, series, report document, physician task or follow-up it names — and, when
that patient is restricted, lets through only the care team and a clinician whose break-glass is open.
Every page seen under break-glass is audited (`break_glass.access`, with the event and its reason). A URL
argument this module does not know stops the app from starting (`check_routes`): a new patient route is
covered by its `patient_id`, a new kind of id must be declared here — deny by default.
"""
from flask import g, render_template, request
from flask_login import current_user
from sqlalchemy import and_, bindparam, exists, select

from opsmgr.audit.service import record
from opsmgr.auth.models import Role
from opsmgr.core import reads
from opsmgr.core.clock import utcnow
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.followups.models import FollowUp
from opsmgr.patients.models import Patient
from opsmgr.reports.models import ReportDocument
from opsmgr.restricted.models import BreakGlassEvent, CareTeamMember, PatientRestriction
from opsmgr.rules.break_glass import may_break_glass
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask

#: URL argument -> (model, the column the argument names, the model's patient column).
PATIENT_ARGUMENTS = {
    "patient_id": (Patient, Patient.id, Patient.id),
    "session_id": (InfusionSession, InfusionSession.id, InfusionSession.patient_id),
    "series_id": (InfusionSeries, InfusionSeries.id, InfusionSeries.patient_id),
    "document_id": (ReportDocument, ReportDocument.document_id, ReportDocument.patient_id),
    "task_id": (PhysicianTask, PhysicianTask.id, PhysicianTask.patient_id),
    "item_id": (FollowUp, FollowUp.id, FollowUp.patient_id),
}
#: URL arguments that name no patient's record, or a child checked against a parent argument above
#: (a medication against its patient_id, a reading against its session_id: core.guard.child_or_404).
OTHER_ARGUMENTS = frozenset({"chair_id", "closure_id", "protocol_id", "user_id", "tablet_id", "filename", "gate",
                             "code", "kind", "break_glass_id", "medication_id", "entry_id", "vital_sign_id", "alert_id",
                             "event_id"})
#: The restricted-record pages themselves: they show the name only.
OPEN_ENDPOINTS = frozenset({"restricted.break_glass", "restricted.manage"})
#: The accounting of disclosures is the privacy officer's (an admin's) answer to the patient: it lists
#: who saw the record, not the record.
ADMIN_ENDPOINTS = frozenset({"exports.disclosures"})


def check_routes(app):
    """Refuse to start with a route whose URL argument is neither a patient's nor declared not to be."""
    for rule in app.url_map.iter_rules():
        unknown = set(rule.arguments) - PATIENT_ARGUMENTS.keys() - OTHER_ARGUMENTS
        if unknown:
            raise RuntimeError(f"{rule.endpoint} ({rule.rule}): URL argument(s) {sorted(unknown)} unknown to "
                               "opsmgr.restricted.access; say which patient they resolve to")


def _open_event(user_id, patient_id, now):
    return (select(BreakGlassEvent.id).where(BreakGlassEvent.user_id == user_id,
                                             BreakGlassEvent.patient_id == patient_id,
                                             BreakGlassEvent.expires_at >= now)
            .order_by(BreakGlassEvent.expires_at.desc()).limit(1).scalar_subquery())


def resolve(view_args, user_id, now):
    """(patient id, restricted, on the care team, open break-glass event id) for the first patient argument
    of the URL, in one statement; None when the URL names no patient or the object does not exist."""
    name = next((name for name in PATIENT_ARGUMENTS if name in (view_args or {})), None)
    if name is None:
        return None
    model, key, patient_column = PATIENT_ARGUMENTS[name]
    on_team = exists().where(CareTeamMember.patient_id == patient_column, CareTeamMember.user_id == user_id)
    query = (select(patient_column, PatientRestriction.is_restricted.is_(True), on_team,
                    _open_event(user_id, patient_column, now))
             .select_from(model).outerjoin(PatientRestriction, PatientRestriction.patient_id == patient_column)
             .where(key == view_args[name]))
    return db.session.execute(query).first()


def enforce():
    """before_request, after core.guard.enforce_access: close a restricted record to all but its care team."""
    if not current_user.is_authenticated or request.endpoint in OPEN_ENDPOINTS:
        return None
    if request.endpoint in ADMIN_ENDPOINTS and current_user.role == Role.ADMIN:
        return None
    now = utcnow()
    found = resolve(request.view_args, current_user.id, now)
    if found is None:
        return None
    patient_id, event_id = found[0], found[3]
    if not found[1] or found[2] or event_id is not None:
        # Seen in full on this request: may_see answers for this patient without hidden_patients' statement.
        g.seen_patient = (current_user.id, patient_id)
    if not found[1] or found[2]:
        return None
    if event_id is not None:
        event = g.break_glass = db.session.get(BreakGlassEvent, event_id)
        record("break_glass.access", actor=current_actor(), now=now, patient_id=patient_id,
               object_type="break_glass_event", object_id=event_id,
               details={"break_glass": True, "event_id": event_id, "reason": event.reason,
                        "endpoint": request.endpoint, "method": request.method})
        return None
    return refuse(patient_id, now)


def refuse(patient_id, now):
    """The "Restricted record" page (403), audited; a clinician may break the glass from it."""
    record("restricted.denied", actor=current_actor(), now=now, outcome="denied", patient_id=patient_id,
           details={"endpoint": request.endpoint, "method": request.method})
    if not reads.in_read_phase():
        db.session.commit()
    patient = db.session.get(Patient, patient_id)
    from opsmgr.restricted.forms import BreakGlassForm  # imported on use: forms import rules only

    form = BreakGlassForm() if may_break_glass(current_user.role) else None
    if form is not None and request.method != "GET":
        form = BreakGlassForm(formdata=None)
    return render_template("restricted/blocked.html", patient=patient, form=form), 403


def hidden_patients(user=None):
    """The restricted patients whose details `user` (default: the signed-in one) may not see — the name
    only — in one statement, once per request and user."""
    user = user if user is not None else current_user
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cache = g.setdefault("hidden_patients", {})
    if user.id not in cache:
        cache[user.id] = frozenset(db.session.scalars(_HIDDEN, {"user_id": user.id, "now": utcnow()}))
    return cache[user.id]


#: hidden_patients' statement, built once (it runs on every page that lists patients).
_HIDDEN = select(PatientRestriction.patient_id).where(
    PatientRestriction.is_restricted.is_(True),
    ~exists().where(CareTeamMember.patient_id == PatientRestriction.patient_id,
                    CareTeamMember.user_id == bindparam("user_id")),
    ~exists().where(and_(BreakGlassEvent.patient_id == PatientRestriction.patient_id,
                         BreakGlassEvent.user_id == bindparam("user_id"),
                         BreakGlassEvent.expires_at >= bindparam("now", type_=BreakGlassEvent.expires_at.type))))


def may_see(user, patient):
    """Whether `user` sees more than the name of `patient` (a Patient or its id)."""
    patient_id = getattr(patient, "id", patient)
    if g.get("seen_patient") == (getattr(user, "id", None), patient_id):
        return True  # enforce() let this user see this patient on this request
    return patient_id not in hidden_patients(user)
