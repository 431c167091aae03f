"""The pre-session checklist page: the nurse's answers, the evaluation, and physician overrides."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from opsmgr.audit.service import record
from opsmgr.checklist import service
from opsmgr.checklist.forms import ANSWER_LABELS, LABELS, ChecklistForm, OverrideForm, shown
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.refusals import DomainError
from opsmgr.core.web import commit_audit_only, current_actor
from opsmgr.extensions import db
from opsmgr.permissions import can_advance_session, can_override_finding
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.service import other_day_problem
from opsmgr.sessions.service import session_or_404

bp = Blueprint("checklist", __name__)

NOT_SAVED = "Not saved: correct the answers marked below. Everything else you entered is still in the form."
CONCURRENT = ("Someone else saved this checklist at the same moment. Nothing of yours was saved; the current "
              "answers are shown, with yours beside them.")
#: The previous session's answers shown beside today's questions.
PREVIOUS_ITEMS = ("medication_changes", "new_diagnoses", "pregnancy_status", "cardio_cerebrovascular_event",
                  "psychosis_symptoms", "mania_symptoms", "substance_use_in_window", "vascular_contraindication",
                  "weight_kg", "systolic", "diastolic", "suicide_risk", "willingness")


def _session_or_404(session_id):
    return session_or_404(session_id, history=True)


@bp.route("/sessions/<int:session_id>/checklist", methods=["GET", "POST"], endpoint="form")
@requires(can_advance_session)
def checklist_form(session_id):
    session = _session_or_404(session_id)
    response = service.response_for(session, now=utcnow())
    if request.method == "GET":
        return _page(session, ChecklistForm.for_session(session, response, formdata=None))
    form = ChecklistForm.for_session(session, response)
    if not form.validate_on_submit():
        return _page(session, form, status=400, problem=NOT_SAVED)
    try:
        service.fill_checklist(session, form.changes(response, session.patient), expected_version=form.version.data,
                               actor=current_actor(), now=utcnow())
    except (service.StaleChecklist, StaleDataError, IntegrityError) as error:
        return _conflict(session_id, form, error)
    except service.ChecklistError as error:
        db.session.rollback()
        if error.field == "day":  # the message stands beside the "Move it to today" action instead
            return _page(_session_or_404(session_id), form, status=409, day_refused=True)
        return _page(_session_or_404(session_id), form, status=409, problem=str(error))
    db.session.commit()
    flash("Checklist saved.", "success")
    return redirect(url_for("checklist.form", session_id=session_id, _anchor="evaluation"))


def _conflict(session_id, form, error):
    """Nothing saved: the saved answers beside the user's, and the form rebased to the saved version."""
    db.session.rollback()
    session = _session_or_404(session_id)
    response = service.response_for(session, now=utcnow())
    if response is None:  # not a concurrent save after all
        raise error
    message = str(error) if isinstance(error, service.StaleChecklist) else CONCURRENT
    conflict = {"message": message, "rows": form.rebase(response, session.patient)}
    return _page(session, form, status=409, conflict=conflict)


@bp.route("/sessions/<int:session_id>/checklist/override", methods=["POST"], endpoint="override")
@requires(can_override_finding)
def override(session_id):
    session = _session_or_404(session_id)
    form = OverrideForm()
    if form.validate_on_submit():
        try:
            service.override_finding(session, code=form.code.data, physician=current_user._get_current_object(),
                                     password=form.password.data, reason=form.reason.data, now=utcnow(),
                                     ip=request.remote_addr)
        except DomainError as error:
            commit_audit_only(error)
            form[error.field or "code"].errors.append(str(error))
        else:
            db.session.commit()
            flash(f"Override recorded for {form.code.data}.", "success")
            return redirect(url_for("checklist.form", session_id=session_id, _anchor="evaluation"))
        session = _session_or_404(session_id)
    saved = ChecklistForm.for_session(session, service.response_for(session, now=utcnow()), formdata=None)
    return _page(session, saved, status=400, override_form=form)


def _page(session, form, *, status=200, problem=None, conflict=None, override_form=None, day_refused=False):
    now = utcnow()
    response = service.response_for(session, now=now)
    other_day = other_day_problem(session, now) \
        if session.state in service.FILLABLE_STATES | {SessionState.SCHEDULED} else None
    previous = service.previous_visit(session, zone=clinic_zone())
    previous_answers = {name: shown(name, getattr(previous.response, name)) for name in PREVIOUS_ITEMS} \
        if previous.response else {}
    html = render_template(
        "checklist/form.html", session=session, patient=session.patient, form=form, response=response,
        evaluation=service.evaluation_for(session, response, now=now), previous=previous,
        previous_answers=previous_answers, answer_labels=ANSWER_LABELS, labels=LABELS, problem=problem,
        conflict=conflict, override_form=override_form, other_day=other_day, day_refused=day_refused,
        editable=session.state in service.FILLABLE_STATES and not other_day,
        may_override=can_override_finding(current_user, session))
    record("checklist.viewed", actor=current_actor(), now=now, object_type="infusion_session", object_id=session.id,
           patient_id=session.patient_id, details={"status": status} if status != 200 else None)
    db.session.commit()
    return html, status
