"""The infusion page at the chair: start gate and dose, controlled substance, vitals, alerts, discharge."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import child_or_404, requires
from opsmgr.core.refusals import DomainError
from opsmgr.core.web import attempt, current_actor
from opsmgr.corrections import service as corrections
from opsmgr.corrections.forms import EnteredInErrorForm
from opsmgr.extensions import db
from opsmgr.gates.models import GATES
from opsmgr.infusion import discharge as discharge_service
from opsmgr.infusion import dose as dose_service
from opsmgr.infusion import gate as gate_service
from opsmgr.infusion import orders as order_service
from opsmgr.infusion import page as page_service
from opsmgr.infusion import vitals as vitals_service
from opsmgr.infusion.forms import (
    AcknowledgeForm,
    ControlledSubstanceForm,
    DischargeForm,
    DoseOrderForm,
    OverrideForm,
    ResumeForm,
    StartDoseForm,
    VitalsForm,
)
from opsmgr.infusion.models import InChairAlert, VitalSign
from opsmgr.permissions import can_advance_session, can_mark_entered_in_error, can_order_dose, can_override_finding
from opsmgr.rules.findings import Problem, Severity
from opsmgr.sessions.service import session_or_404

#: Every step at the chair is open to nurses and physicians (can_advance_session: "the steps at the
#: chair"); coordinators see the board but not the dose, vitals or alerts. Overrides: physicians only.
bp = Blueprint("infusion", __name__)

#: Findings about the ordered dose itself, whose override starts from the order's reason.
DOSE_CODES = frozenset({"DOSE_OUTSIDE_USUAL_RANGE", "DOSE_ABOVE_CEILING"})
CONFLICT = "Someone else changed this session at the same moment; nothing was saved. Check the page and try again."


@bp.route("/sessions/<int:session_id>/infusion")
@requires(can_advance_session)
def page(session_id):
    visit = session_or_404(session_id)
    start = StartDoseForm.for_session(visit, formdata=request.args or None)
    if request.args:
        start.validate()
        start.dose_order.errors = []
    html = _render(visit, start=start)[0]
    record("infusion.viewed", actor=current_actor(), now=utcnow(), object_type="infusion_session",
           object_id=visit.id, patient_id=visit.patient_id)
    db.session.commit()
    return html


@bp.route("/sessions/<int:session_id>/infusion/start", methods=["POST"])
@requires(can_advance_session)
def start(session_id):
    visit = session_or_404(session_id)
    form = StartDoseForm.for_session(visit)
    return _attempt(visit, form, "The dose has started.", lambda: dose_service.start_dose(
        visit, infusion_minutes=form.proposal(form.route), shown_order_id=form.dose_order.data or 0,
        actor=current_actor(), now=utcnow()), forms={"start": form})


@bp.route("/sessions/<int:session_id>/infusion/dose-order", methods=["POST"])
@requires(can_order_dose)
def order_dose(session_id):
    visit = session_or_404(session_id)
    form = DoseOrderForm.for_session(visit)
    return _attempt(visit, form, "The new dose is ordered for this session.", lambda: order_service.order_dose(
        visit, dose=form.dose.data, reason=form.reason.data, physician=current_user._get_current_object(),
        password=form.password.data, now=utcnow(), ip=request.remote_addr), forms={"order": form},
        next_url=url_for("infusion.page", session_id=visit.id, _anchor="start-gate"))


@bp.route("/sessions/<int:session_id>/infusion/overrides/<gate>/<code>", methods=["POST"])
@requires(can_override_finding)
def override(session_id, gate, code):
    visit = session_or_404(session_id)
    if gate not in GATES:
        abort(404)
    form = OverrideForm.for_finding(gate, code)
    # On a refusal the page shows the finding again, for the same time (and the pending discharge
    # answers), with this form's errors.
    shown = {"start": StartDoseForm.for_session(visit, formdata=None, infusion_minutes=form.infusion_minutes.data)}
    return _attempt(visit, form, "The override is recorded.", lambda: gate_service.override_finding(
        visit, gate=gate, code=code, physician=current_user._get_current_object(), password=form.password.data,
        totp_code=form.totp_code.data, reason=form.reason.data, now=utcnow(), ip=request.remote_addr,
        shown_order_id=form.dose_order.data or 0, infusion_minutes=form.infusion_minutes.data, moaas=form.moaas.data),
        forms={**shown, "overrides": {(gate, code): form}}, next_url=_page_url(visit, form, gate))


@bp.route("/sessions/<int:session_id>/infusion/controlled-substance", methods=["POST"])
@requires(can_advance_session)
def controlled_substance(session_id):
    visit = session_or_404(session_id)
    form = ControlledSubstanceForm(prefix="cs")
    return _attempt(visit, form, "The controlled-substance record is complete.",
                    lambda: dose_service.record_controlled_substance(visit, **form.values(), actor=current_actor(),
                                                                now=utcnow()), forms={"controlled": form})


@bp.route("/sessions/<int:session_id>/infusion/vitals", methods=["POST"])
@requires(can_advance_session)
def vitals(session_id):
    visit = session_or_404(session_id)
    form = VitalsForm(prefix="vitals")
    return _attempt(visit, form, "The reading is recorded.", lambda: vitals_service.record_vitals(
        visit, **form.values(), actor=current_actor(), now=utcnow()), forms={"vitals": form})


@bp.route("/sessions/<int:session_id>/infusion/vitals/<int:vital_sign_id>/entered-in-error", methods=["POST"])
@requires(can_mark_entered_in_error)
def vitals_in_error(session_id, vital_sign_id):
    visit = session_or_404(session_id)
    reading = child_or_404(VitalSign, vital_sign_id, session_id=visit.id)
    if not can_mark_entered_in_error(current_user, reading):
        abort(403)
    form = EnteredInErrorForm.for_entry("vitals", reading)
    return _attempt(visit, form, "The reading is marked entered in error.", lambda: corrections.mark_reading_in_error(
        visit, reading, reason=form.reason.data, actor=current_actor(), now=utcnow()),
        forms={"in_error": {reading.id: form}},
        next_url=url_for("infusion.page", session_id=visit.id, _anchor="vitals"))


@bp.route("/sessions/<int:session_id>/infusion/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@requires(can_advance_session)
def acknowledge(session_id, alert_id):
    visit = session_or_404(session_id)
    alert = child_or_404(InChairAlert, alert_id, session_id=visit.id)
    form = AcknowledgeForm.for_alert(alert)
    return _attempt(visit, form, "The alert is acknowledged.", lambda: vitals_service.acknowledge_alert(
        alert, action=form.action.data, note=form.note.data, drug_given=form.drug_given.data,
        actor=current_actor(), now=utcnow()), forms={"acknowledge": {alert.id: form}})


@bp.route("/sessions/<int:session_id>/infusion/end", methods=["POST"])
@requires(can_advance_session)
def end(session_id):
    visit = session_or_404(session_id)
    return _attempt(visit, None, "The infusion has ended; the recovery observation has started.",
                    lambda: dose_service.end_infusion(visit, actor=current_actor(), now=utcnow()))


@bp.route("/sessions/<int:session_id>/infusion/resume", methods=["POST"])
@requires(can_advance_session)
def resume(session_id):
    visit = session_or_404(session_id)
    form = ResumeForm(prefix="resume")
    return _attempt(visit, form, "The infusion has resumed.", lambda: vitals_service.resume_infusion(
        visit, note=form.note.data, actor=current_actor(), now=utcnow()), forms={"resume": form})


@bp.route("/sessions/<int:session_id>/infusion/discharge", methods=["POST"])
@requires(can_advance_session)
def discharge(session_id):
    visit = session_or_404(session_id)
    form = DischargeForm(prefix="discharge")
    return _attempt(visit, form, "The patient is discharged.", lambda: discharge_service.discharge(
        visit, **form.values(), actor=current_actor(), now=utcnow()), forms={"discharge": form})


def _attempt(visit, form, done, call, forms=None, next_url=None):
    """Validate, call one service, commit and redirect; or show the page again with the errors (400)."""
    forms = forms or {}
    if form is not None and not form.validate():
        return _render(visit, status=400, **forms)

    def finished(_):
        flash(done, "success")
        return redirect(next_url or url_for("infusion.page", session_id=visit.id))

    return attempt(call, done=finished, refused=lambda error: _refused(visit.id, form, forms, error),
                   conflict=lambda _: _refused(visit.id, form, forms, DomainError([Problem(None, CONFLICT)])))


def _refused(session_id, form, forms, error):
    visit = session_or_404(session_id)
    general = []
    for field, message in error.errors:
        target = form[field] if form is not None and field in form else None
        (target.errors if target is not None else general).append(message)
    return _render(visit, status=400, errors=general, refused=error.findings, **forms)


def _page_url(visit, form, gate):
    """Back to the page showing the same proposed time, so the override is seen covering it."""
    if gate != "start" or form.infusion_minutes.data is None:
        return url_for("infusion.page", session_id=visit.id, _anchor=f"{gate}-gate")
    return url_for("infusion.page", session_id=visit.id, _anchor="start-gate",
                   **{"start-infusion_minutes": form.infusion_minutes.data})


def _render(visit, status=200, errors=(), refused=(), **submitted):
    """The page, with any just-submitted form in place of a blank one (to show its errors)."""
    route = visit.series.protocol.route
    start = submitted.get("start") or StartDoseForm.for_session(visit, formdata=None)
    minutes = start.proposal(route) if not start.errors else None
    posted = submitted.get("discharge")
    answers = posted.values() if posted and not posted.errors else {}
    view = page_service.chair_view(visit, now=utcnow(), infusion_minutes=minutes, **answers)
    # A refused discharge's answers stay in the form (for the nurse and for the physician), never retyped.
    discharge_form = posted or DischargeForm(prefix="discharge", formdata=None,
                                             data=view.discharge_answers if view.pending else None)
    if view.plan is not None:
        start.dose_order.data = view.plan.order_id  # the dose this page shows, whatever was posted
    forms = {"start": start, "discharge": discharge_form,
             "order": submitted.get("order") or DoseOrderForm.for_session(visit, formdata=None),
             "vitals": submitted.get("vitals") or VitalsForm(prefix="vitals", formdata=None,
                                                             data={"taken_at": _clinic_minute()}),
             "resume": submitted.get("resume") or ResumeForm(prefix="resume", formdata=None),
             "controlled": submitted.get("controlled") or ControlledSubstanceForm(prefix="cs", formdata=None),
             "overrides": _override_forms(view, minutes, submitted.get("overrides", {})),
             "acknowledge": {alert.id: submitted.get("acknowledge", {}).get(alert.id)
                             or AcknowledgeForm.for_alert(alert, formdata=None) for alert in view.alerts},
             "in_error": EnteredInErrorForm.for_entries("vitals", view.readings, submitted.get("in_error"))}
    return render_template("infusion/page.html", view=view, session=visit, forms=forms, errors=errors,
                           refused=refused), status


def _clinic_minute():
    """Now on the clinic's clock, to the minute: the time a reading is usually taken at."""
    return utcnow().astimezone(clinic_zone()).time().replace(second=0, microsecond=0)


def _override_forms(view, minutes, submitted):
    """One override form per open, overridable finding, carrying the dose, time or MOAA/S it is for.
    A finding about an ordered dose starts with the order's reason, so the physician need not retype it."""
    forms = {}
    order = view.plan.order if view.plan is not None else None
    for gate, result in (("start", view.start), ("discharge", view.discharge)):
        for finding in (result.open if result else ()):
            if finding.severity != Severity.ABSOLUTE:
                data = {"dose_order": view.plan.order_id if view.plan else 0, "infusion_minutes": minutes,
                        "moaas": view.discharge_answers.get("moaas"),
                        "reason": order.reason if order is not None and finding.code in DOSE_CODES else None}
                form = submitted.get((gate, finding.code)) or OverrideForm.for_finding(
                    gate, finding.code, formdata=None, data=data)
                form.dose_order.data = data["dose_order"]  # the dose this page shows, whatever was posted
                forms[(gate, finding.code)] = form
    return forms
