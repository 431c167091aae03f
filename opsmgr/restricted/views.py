"""Restricted records: the care team page, break-glass, and the admins' review."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.templating import clinic_time
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.permissions import can_break_glass, can_restrict_patients, can_review_break_glass
from opsmgr.restricted import access, service
from opsmgr.restricted.forms import BreakGlassForm, MrnLookupForm, RestrictionForm, ReviewForm
from opsmgr.restricted.models import BreakGlassEvent, PatientRestriction

bp = Blueprint("restricted", __name__)


def _patient_or_404(patient_id):
    return db.session.get(Patient, patient_id) or abort(404)


@bp.route("/patients/<int:patient_id>/break-glass", methods=["POST"], endpoint="break_glass")
@requires(can_break_glass)
def break_glass(patient_id):
    patient = _patient_or_404(patient_id)
    if access.may_see(current_user, patient):
        return redirect(url_for("patients.detail", patient_id=patient.id))
    form = BreakGlassForm()

    def refused(error):
        show_at_fields(form, error)
        return render_template("restricted/blocked.html", patient=patient, form=form), 400

    if not form.validate_on_submit():
        return render_template("restricted/blocked.html", patient=patient, form=form), 400
    minutes = current_app.config["BREAK_GLASS_TIMEOUT"]
    return attempt(lambda: service.break_glass(
        patient, current_user._get_current_object(), reason=form.reason.data, detail=form.detail.data,
        password=form.password.data, actor=current_actor(), now=utcnow(), duration=minutes),
        done=lambda event: _opened(patient, event), refused=refused)


def _opened(patient, event):
    flash(f"Break-glass: you have access to this record until {clinic_time(event.expires_at, '%H:%M')}. "
          "Every page you open is recorded with your reason.", "warning")
    return redirect(url_for("patients.detail", patient_id=patient.id))


def _staff_choices():
    staff = db.session.scalars(select(StaffUser).where(StaffUser.is_active_account.is_(True))
                               .order_by(StaffUser.username)).all()
    return [SelectChoice(user.id, f"{user.display_name} ({user.role_enum.label})") for user in staff]


@bp.route("/patients/<int:patient_id>/restriction", methods=["GET", "POST"], endpoint="manage")
@requires(can_restrict_patients)
def manage(patient_id):
    patient = _patient_or_404(patient_id)
    row = service.restriction_of(patient.id)
    restricted = bool(row and row.is_restricted)
    if restricted and current_user.role != "admin" and current_user.id not in service.care_team_ids(patient.id):
        return access.refuse(patient.id, utcnow())  # only the care team (or an admin) changes its own team
    form = RestrictionForm(data={"restricted": "yes" if restricted else "no",
                                 "care_team": sorted(service.care_team_ids(patient.id))})
    form.care_team.choices = _staff_choices()
    if not form.validate_on_submit():
        code = 400 if request.method == "POST" else 200
        return render_template("restricted/manage.html", patient=patient, form=form, row=row), code

    def refused(error):
        show_at_fields(form, error)
        return render_template("restricted/manage.html", patient=patient, form=form, row=row), 400

    def done(_row):
        flash("Record restricted to its care team." if form.restricted.data == "yes" else "Record not restricted.",
              "success")
        target = "restricted.admin_page" if current_user.role == "admin" else "patients.detail"
        return redirect(url_for(target, **({} if current_user.role == "admin" else {"patient_id": patient.id})))

    return attempt(lambda: service.set_restriction(
        patient, restricted=form.restricted.data == "yes", care_team=form.care_team.data or [],
        reason=form.reason.data, actor=current_actor(), now=utcnow()), done=done, refused=refused)


@bp.route("/admin/restricted-records", endpoint="admin_page")
@requires(can_review_break_glass)
def admin_page():
    lookup = MrnLookupForm(request.args)
    if request.args and lookup.validate():
        patient = db.session.scalar(select(Patient).where(Patient.mrn == lookup.mrn.data))
        if patient is not None:
            return redirect(url_for("restricted.manage", patient_id=patient.id))
        lookup.mrn.errors = ["No patient has this MRN."]
    restricted = db.session.execute(select(Patient.id, Patient.legal_name, Patient.mrn, PatientRestriction.changed_at)
                                    .join(PatientRestriction, PatientRestriction.patient_id == Patient.id)
                                    .where(PatientRestriction.is_restricted.is_(True))
                                    .order_by(Patient.family_key, Patient.given_key, Patient.id)).all()
    return render_template("restricted/admin.html", lookup=lookup, restricted=restricted,
                           events=service.events_to_review(), review_form=ReviewForm())


@bp.route("/admin/break-glass/<int:break_glass_id>/review", methods=["POST"], endpoint="review")
@requires(can_review_break_glass)
def review(break_glass_id):
    event = db.session.get(BreakGlassEvent, break_glass_id) or abort(404)
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)

    def refused(error):
        flash(str(error), "danger")
        return redirect(url_for("admin.staff_list"))

    def done(_event):
        flash("Break-glass event marked reviewed.", "success")
        return redirect(url_for("admin.staff_list"))

    return attempt(lambda: service.review(event, actor=current_actor(), now=utcnow()), done=done, refused=refused)


@bp.app_template_global("break_glass_to_review")
def break_glass_to_review():
    return service.events_to_review() if can_review_break_glass(current_user) else []


@bp.app_template_global("hidden_patients")
def hidden_patients():
    """Template global: the restricted patients the signed-in user sees by name only."""
    return access.hidden_patients()


@bp.app_context_processor
def reasons():
    return {"break_glass_reasons": service.REASON_LABELS}
