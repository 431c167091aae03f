"""The pre-session checklist page: the nurse's answers, the evaluation, and physician overrides."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.audit.service import record
from opsmgr.checklist import service
from opsmgr.checklist.forms import ChecklistForm, OverrideForm
from opsmgr.checklist.labels import ANSWER_LABELS, LABELS, shown
from opsmgr.checklist.progress import checklist_progress
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor
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
    visit = _session_or_404(session_id)
    response = service.response_for(visit, now=utcnow())
    if request.method == "GET":
        return _page(visit, ChecklistForm.for_session(visit, response, formdata=None))
    form = ChecklistForm.for_session(visit, response)
    if not form.validate_on_submit():
        return _page(visit, form, status=400, problem=NOT_SAVED)

    def refused(error):
        if isinstance(error, service.StaleChecklist):
            return _conflict(session_id, form, error)
        visit = _session_or_404(session_id)
        if error.field == "day":  # the message stands beside the "Move it to today" action instead
            return _page(visit, form, status=409, day_refused=True)
        return _page(visit, form, status=409, problem=str(error))

    def saved(_):
        flash("Checklist saved.", "success")
        return redirect(url_for("checklist.form", session_id=session_id, _anchor="evaluation"))

    return attempt(lambda: service.fill_checklist(visit, form.changes(response, visit.patient),
                                                  expected_version=form.version.data, actor=current_actor(),
                                                  now=utcnow()),
                   done=saved, refused=refused, conflict=lambda error: _conflict(session_id, form, error))


def _conflict(session_id, form, error):
    """Nothing saved: the saved answers beside the user's, and the form rebased to the saved version."""
    db.session.rollback()
    visit = _session_or_404(session_id)
    response = service.response_for(visit, now=utcnow())
    if response is None:  # not a concurrent save after all
        raise error
    message = str(error) if isinstance(error, service.StaleChecklist) else CONCURRENT
    conflict = {"message": message, "rows": form.rebase(response, visit.patient)}
    return _page(visit, form, status=409, conflict=conflict)


@bp.route("/sessions/<int:session_id>/checklist/override", methods=["POST"], endpoint="override")
@requires(can_override_finding)
def override(session_id):
    visit = _session_or_404(session_id)
    form = OverrideForm()
    if form.validate_on_submit():
        def recorded(_):
            flash("The override is recorded.", "success")
            return redirect(url_for("checklist.form", session_id=session_id, _anchor="evaluation"))

        return attempt(lambda: service.override_finding(
            visit, code=form.code.data, physician=current_user._get_current_object(), password=form.password.data,
            totp_code=form.totp_code.data, reason=form.reason.data, now=utcnow(), ip=request.remote_addr),
            done=recorded, refused=lambda error: _override_refused(session_id, form, error))
    return _override_refused(session_id, form)


def _override_refused(session_id, form, error=None):
    if error is not None:
        form[error.field or "code"].errors.append(str(error))
    visit = _session_or_404(session_id)
    saved = ChecklistForm.for_session(visit, service.response_for(visit, now=utcnow()), formdata=None)
    return _page(visit, saved, status=400, override_form=form)


def _page(visit, form, *, status=200, problem=None, conflict=None, override_form=None, day_refused=False):
    now = utcnow()
    response = service.response_for(visit, now=now)
    other_day = other_day_problem(visit, now) \
        if visit.state in service.FILLABLE_STATES | {SessionState.SCHEDULED} else None
    previous = service.previous_visit(visit, zone=clinic_zone())
    previous_answers = {name: shown(name, getattr(previous.response, name)) for name in PREVIOUS_ITEMS} \
        if previous.response else {}
    evaluation = service.evaluation_for(visit, response, now=now)
    html = render_template(
        "checklist/form.html", session=visit, patient=visit.patient, form=form, response=response,
        evaluation=evaluation, progress=checklist_progress(evaluation, form), previous=previous,
        previous_answers=previous_answers, answer_labels=ANSWER_LABELS, labels=LABELS, problem=problem,
        conflict=conflict, override_form=override_form, other_day=other_day, day_refused=day_refused,
        editable=visit.state in service.FILLABLE_STATES and not other_day,
        may_override=can_override_finding(current_user, visit))
    record("checklist.viewed", actor=current_actor(), now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"status": status} if status != 200 else None)
    db.session.commit()
    return html, status
