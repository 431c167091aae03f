"""Ordering, viewing and stopping infusion series."""
from datetime import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.permissions import can_order_series, can_stop_series, can_view_patients
from opsmgr.series import service
from opsmgr.series.forms import SeriesOrderForm, StopSeriesForm
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession

bp = Blueprint("series", __name__)


def _current_protocols():
    return db.session.scalars(select(Protocol).where(Protocol.is_current.is_(True)).order_by(Protocol.name)).all()


@bp.route("/patients/<int:patient_id>/series/new", methods=["GET", "POST"])
@requires(can_order_series)
def order(patient_id):
    """The order in two steps: the form posts for a preview (nothing booked); the preview's "Confirm and
    book" carries the exact plan (booked only if it is still the plan), "Change" brings the form back."""
    patient = db.get_or_404(Patient, patient_id)
    protocols = _current_protocols()
    form = SeriesOrderForm(indication=patient.indication, preferred_time=time(9, 0))
    form.set_protocols(protocols)
    step = request.form.get("step", "preview")
    if request.method == "POST" and step == "change":
        return _order_page(form, patient, protocols)
    if not form.validate_on_submit():
        return _order_page(form, patient, protocols, 400 if request.method == "POST" else 200)
    order = _order(patient, form, next(p for p in protocols if p.id == form.protocol_id.data))

    def refused(error):
        if isinstance(error, service.PlanChanged):
            return _preview_page(form, patient, error.plan, changed=str(error), status=409)
        show_at_fields(form, error, "start_on")
        return _order_page(form, patient, protocols, 400)

    if step == "confirm":
        return attempt(lambda: service.order_series(order, confirmed=request.form.get("plan", ""),
                                                    actor=current_actor(), now=utcnow()),
                       done=_ordered, refused=refused)
    return attempt(lambda: service.preview_series(order, actor=current_actor(), now=utcnow()),
                   done=lambda plan: _preview_page(form, patient, plan), refused=refused)


def _ordered(series):
    count = len(series.sessions)
    flash(f"{series.protocol.name} ordered: {count} session{'' if count == 1 else 's'} booked.", "success")
    for warning in series.warnings:
        flash(f"Protocol warning: {warning['message']}", "warning")
    return redirect(url_for("series.detail", series_id=series.id))


def _order_page(form, patient, protocols, status=200):
    return render_template("series/order.html", form=form, patient=patient, protocols=protocols), status


def _preview_page(form, patient, plan, changed=None, status=200):
    """The plan to confirm; the order's fields ride along as typed, so "Change" loses nothing."""
    typed = {name: request.form.get(name, "") for name in form.data if name not in {"csrf_token", "submission_key"}}
    return render_template("series/preview.html", patient=patient, plan=plan, typed=typed, changed=changed), status


def _order(patient, form, protocol):
    """The order as the physician gave it, the protocol's values where a field was left empty."""
    return service.SeriesOrder(
        patient_id=patient.id, protocol_id=protocol.id, indication=form.indication.data,
        dose_mg_per_kg=protocol.dose_mg_per_kg if form.dose_mg_per_kg.data is None else form.dose_mg_per_kg.data,
        dose_mg=protocol.dose_mg if form.dose_mg.data is None else form.dose_mg.data,
        planned_count=form.planned_count.data or protocol.planned_count, start_on=form.start_on.data,
        preferred_time=form.preferred_time.data, reevaluate_on=form.reevaluate_on.data)


@bp.route("/series/<int:series_id>")
@requires(can_view_patients)
def detail(series_id):
    series = db.first_or_404(select(InfusionSeries).where(InfusionSeries.id == series_id).options(
        selectinload(InfusionSeries.protocol),
        selectinload(InfusionSeries.sessions).selectinload(InfusionSession.chair)))
    html = render_detail(series)
    record("series.viewed", actor=current_actor(), now=utcnow(), object_type="infusion_series",
           object_id=series.id, patient_id=series.patient_id)
    db.session.commit()
    return html


def render_detail(series, *, sign_form=None, stop_form=None):
    """The series page; a refused form (stopping, signing the summary) is shown with its messages."""
    from opsmgr.reports.forms import SeriesSignForm
    from opsmgr.reports.series import series_report

    patient = db.session.get(Patient, series.patient_id)
    return render_template("series/detail.html", series=series, patient=patient,
                           stop_form=stop_form or StopSeriesForm(), not_at_preferred=_not_at_preferred(series),
                           report=series_report(series), sign_form=sign_form or SeriesSignForm())


@bp.route("/series/<int:series_id>/stop", methods=["POST"])
@requires(can_stop_series)
def stop(series_id):
    series = db.get_or_404(InfusionSeries, series_id)
    if not can_stop_series(current_user, series):
        abort(403)
    form = StopSeriesForm()
    if not form.validate_on_submit():
        return _stop_refused(series, form)

    def stopped(_):
        flash("The series is stopped; its remaining scheduled sessions were cancelled.", "success")
        return redirect(url_for("series.detail", series_id=series.id))

    return attempt(lambda: service.stop_series(series, reason=form.reason.data, actor=current_actor(), now=utcnow()),
                   done=stopped, refused=lambda error: _stop_refused(series, form, error))


def _stop_refused(series, form, error=None):
    if error is not None:
        show_at_fields(form, error, "reason")
    return render_detail(series, stop_form=form), 400


def _not_at_preferred(series):
    """Ids of the sessions that are not at the series' preferred clock time (placed or moved elsewhere)."""
    zone = clinic_zone()
    return {s.id for s in series.sessions if f"{s.starts_at.astimezone(zone):%H:%M}" != series.preferred_time}
