"""Admin pages for protocols, chairs, opening hours and settings."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from opsmgr.clinic import service
from opsmgr.clinic.forms import ChairForm, ChairUpdateForm, HoursForm, ProtocolForm, SettingsForm
from opsmgr.clinic.service import WEEKDAYS, describe_phases
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_manage_clinic
from opsmgr.schedule.models import Chair
from opsmgr.series.models import Protocol

bp = Blueprint("clinic", __name__, url_prefix="/admin/clinic")


def _chair_form(chair, formdata=None):
    return ChairUpdateForm(formdata=formdata, obj=chair).for_chair(chair)


def _overview(status=200, create_form=None, chair_forms=None, settings_form=None):
    """The overview page; a form that failed is passed in so its errors and input show."""
    chairs = db.session.scalars(select(Chair).order_by(Chair.position, Chair.id)).all()
    forms = {chair.id: _chair_form(chair) for chair in chairs} | (chair_forms or {})
    return render_template(
        "clinic/overview.html", chairs=chairs, chair_forms=forms, weekdays=WEEKDAYS,
        create_form=create_form or ChairForm(formdata=None),
        settings_form=settings_form or SettingsForm(formdata=None, obj=service.clinic_setting()),
        days=service.clinic_days(), protocols=service.current_protocols(), describe=describe_phases), status


def _back(anchor, message=None):
    if message:
        flash(message, "success")
    return redirect(url_for("clinic.overview", _anchor=anchor))


@bp.route("/")
@requires(can_manage_clinic)
def overview():
    return _overview()


@bp.route("/chairs", methods=["POST"])
@requires(can_manage_clinic)
def chair_create():
    form = ChairForm()
    if not form.validate_on_submit():
        return _overview(400, create_form=form)

    def refused(error):
        show_at_fields(form, error)
        return _overview(400, create_form=form)

    return attempt(lambda: service.create_chair(name=form.name.data, position=form.position.data,
                                                actor=current_actor(), now=utcnow()),
                   done=lambda chair: _back("chairs", f"{chair.name} added."), refused=refused)


@bp.route("/chairs/<int:chair_id>", methods=["POST"])
@requires(can_manage_clinic)
def chair_update(chair_id):
    chair = db.get_or_404(Chair, chair_id)
    form = _chair_form(chair, formdata=request.form)
    if not form.validate_on_submit():
        return _overview(400, chair_forms={chair_id: form})
    position = chair.position if form.position.data is None else form.position.data

    def refused(error):
        show_at_fields(form, error)
        return _overview(400, chair_forms={chair_id: form})

    return attempt(lambda: service.update_chair(chair, name=form.name.data, position=position,
                                                is_active=form.is_active.data, actor=current_actor(), now=utcnow()),
                   done=lambda changes: _back("chairs", f"{chair.name} saved." if changes
                                              else f"Nothing changed for {chair.name}."),
                   refused=refused)


@bp.route("/hours", methods=["GET", "POST"])
@requires(can_manage_clinic)
def hours():
    days = service.clinic_days()
    stored = {"days": [{"is_open": d.is_open, "opens_at": d.opens_at, "closes_at": d.closes_at} for d in days]}
    form = HoursForm(data=None if request.method == "POST" else stored).label_days(WEEKDAYS)
    if form.validate_on_submit():
        chosen = {number: (entry.form.is_open.data, entry.form.opens_at.data, entry.form.closes_at.data)
                  for number, entry in enumerate(form.days)}
        changes, outside = service.set_hours(chosen, actor=current_actor(), now=utcnow())
        db.session.commit()
        flash("Opening hours saved." if changes else "Opening hours unchanged.", "success")
        if outside:
            flash(f"{outside} booked session(s) ahead now fall outside the opening hours. They were not moved: "
                  "review them in the schedule.", "warning")
        return _back("hours")
    return render_template("clinic/hours.html", form=form, weekdays=WEEKDAYS)


@bp.route("/settings", methods=["POST"])
@requires(can_manage_clinic)
def settings():
    form = SettingsForm()
    if form.validate_on_submit():
        changes = service.update_settings(turnover_minutes=form.turnover_minutes.data,
                                          ical_patient_names=form.ical_patient_names.data,
                                          actor=current_actor(), now=utcnow())
        db.session.commit()
        flash("Settings saved." if changes else "Settings unchanged.", "success")
        return _back("settings")
    return _overview(400, settings_form=form)


@bp.route("/protocols/<int:protocol_id>")
@requires(can_manage_clinic)
def protocol_detail(protocol_id):
    protocol = db.get_or_404(Protocol, protocol_id)
    return render_template("clinic/protocol_detail.html", protocol=protocol, describe=describe_phases,
                           history=service.protocol_history(protocol.code))


@bp.route("/protocols/<int:protocol_id>/edit", methods=["GET", "POST"])
@requires(can_manage_clinic)
def protocol_edit(protocol_id):
    protocol = db.get_or_404(Protocol, protocol_id)
    if request.method == "GET" and not protocol.is_current:
        flash(f"Version {protocol.version} is an old version; edits start from the current one.", "info")
        return redirect(url_for("clinic.protocol_edit", protocol_id=service.current_version(protocol.code).id))
    form = ProtocolForm(route=protocol.route, data=None if request.method == "POST" else service.form_values(protocol))
    if form.validate_on_submit():
        return attempt(lambda: service.revise_protocol(protocol, form.values(), actor=current_actor(), now=utcnow()),
                       done=lambda revised: _revised(protocol, revised),
                       refused=lambda error: render_template("clinic/protocol_form.html", form=form,
                                                             protocol=protocol, problem=str(error)))
    return render_template("clinic/protocol_form.html", form=form, protocol=protocol, problem=None)


def _revised(protocol, revised):
    if revised is None:
        flash(f"Nothing changed; {protocol.name} stays at version {protocol.version}.", "info")
        return redirect(url_for("clinic.protocol_detail", protocol_id=protocol.id))
    flash(f"Saved as version {revised.version}. Series already ordered keep the version they started on.",
          "success")
    return redirect(url_for("clinic.protocol_detail", protocol_id=revised.id))
