"""Admin pages for protocols, chairs, opening hours and settings."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from opsmgr.clinic import closures, service
from opsmgr.clinic.forms import ChairForm, ChairUpdateForm, ClosureForm, HoursForm, ProtocolForm, SettingsForm
from opsmgr.clinic.service import WEEKDAYS, describe_phases, phases_text
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.edits import EditConflict, attempt_merged, conflict_view, kept_message, merge_input, open_on, reopen
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_manage_clinic
from opsmgr.schedule.models import Chair, ClinicClosure
from opsmgr.series.models import Protocol

bp = Blueprint("clinic", __name__, url_prefix="/admin/clinic")


def _chair_form(chair, formdata=None):
    return ChairUpdateForm(formdata=formdata, obj=chair).for_chair(chair)


def _settings_form():
    form = SettingsForm(formdata=None, obj=service.clinic_setting())
    return open_on(form, form.values())


def _overview(status=200, create_form=None, chair_forms=None, settings_form=None, settings_merge=None):
    """The overview page; a form that failed is passed in so its errors and input show."""
    chairs = db.session.scalars(select(Chair).order_by(Chair.position, Chair.id)).all()
    forms = {chair.id: _chair_form(chair) for chair in chairs} | (chair_forms or {})
    return render_template(
        "clinic/overview.html", chairs=chairs, chair_forms=forms, weekdays=WEEKDAYS,
        create_form=create_form or ChairForm(formdata=None),
        settings_form=settings_form or _settings_form(), settings_merge=settings_merge,
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
        return attempt(lambda: service.set_hours(chosen, actor=current_actor(), now=utcnow()), done=_hours_saved,
                       refused=lambda error: _hours_refused(form, error))
    return render_template("clinic/hours.html", form=form, weekdays=WEEKDAYS)


def _hours_saved(result):
    changes, outside = result
    flash("Opening hours saved." if changes else "Opening hours unchanged.", "success")
    if outside:
        flash(f"{outside} booked session(s) ahead now fall outside the opening hours. They were not moved: "
              "review them in the schedule.", "warning")
    return _back("hours")


def _hours_refused(form, error):
    show_at_fields(form, error)
    return render_template("clinic/hours.html", form=form, weekdays=WEEKDAYS), 400


@bp.route("/settings", methods=["POST"])
@requires(can_manage_clinic)
def settings():
    form = SettingsForm()
    if form.validate_on_submit():
        def saved(result):
            said = "Settings saved." if result.changed else "Settings unchanged."
            return _back("settings", " ".join(filter(None, [said, kept_message(result.kept, result.saved_by, form)])))

        return attempt_merged(lambda: service.update_settings(form.values(), **merge_input(form), actor=current_actor(),
                                                              now=utcnow()),
                              done=saved, refused=lambda error: _settings_refused(form, error))
    return _overview(400, settings_form=form)


def _settings_refused(form, error):
    if isinstance(error, EditConflict):
        reopen(form, error)
        return _overview(409, settings_form=form, settings_merge=conflict_view(form, error))
    show_at_fields(form, error)
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
        return attempt_merged(lambda: service.revise_protocol(protocol, form.values(), **merge_input(form),
                                                              actor=current_actor(), now=utcnow()),
                              done=lambda saved: _revised(protocol, saved, form),
                              refused=lambda error: _protocol_refused(protocol, form, error))
    return render_template("clinic/protocol_form.html", form=form, protocol=protocol, problem=None, merge=None)


def _protocol_refused(protocol, form, error):
    """Both this edit and the current version changed a field: the form again, opened on the current
    version, with both values and a choice for each such field (409)."""
    if not isinstance(error, EditConflict):
        return render_template("clinic/protocol_form.html", form=form, protocol=protocol, problem=str(error),
                               merge=None)
    current = db.session.get(Protocol, error.version)
    reopen(form, error, shown=_as_typed)
    return render_template("clinic/protocol_form.html", form=form, protocol=current, problem=None,
                           merge=conflict_view(form, error, shown=_as_typed)), 409


def _as_typed(name, value):
    return phases_text(value) if name == "phases" and value is not None else value


def _revised(protocol, saved, form):
    kept = kept_message(saved.kept, saved.saved_by, form)
    if saved.row is None:
        flash(" ".join(filter(None, [f"Nothing changed; {protocol.name} stays at version {protocol.version}.", kept])),
              "info")
        return redirect(url_for("clinic.protocol_detail", protocol_id=protocol.id))
    flash(" ".join(filter(None, [f"Saved as version {saved.row.version}. Series already ordered keep the version "
                                 "they started on.", kept])), "success")
    return redirect(url_for("clinic.protocol_detail", protocol_id=saved.row.id))


@bp.route("/closures", methods=["GET", "POST"])
@requires(can_manage_clinic)
def closures_page():
    """Holiday closures: the ones ahead, each removable, and a form to add one."""
    form = ClosureForm()
    if not form.validate_on_submit():
        return _closures(form, 400 if request.method == "POST" else 200)

    def added(result):
        closure, booked = result
        flash(f"The clinic is closed on {closure.closed_on:%a %d %b %Y} ({closure.label}).", "success")
        if booked:
            flash(f"{booked} session(s) are booked that day. They were not moved: move them in the schedule.",
                  "warning")
        return redirect(url_for("clinic.closures_page"))

    def refused(error):
        show_at_fields(form, error, "closed_on")
        return _closures(form, 400)

    return attempt(lambda: closures.add_closure(closed_on=form.closed_on.data, label=form.label.data,
                                                actor=current_actor(), now=utcnow()), done=added, refused=refused)


@bp.route("/closures/<int:closure_id>/remove", methods=["POST"])
@requires(can_manage_clinic)
def closure_remove(closure_id):
    closure = db.get_or_404(ClinicClosure, closure_id)

    def removed(_):
        flash(f"{closure.closed_on:%a %d %b %Y} is no longer a closure.", "success")
        return redirect(url_for("clinic.closures_page"))

    def refused(error):
        flash(str(error), "danger")
        return redirect(url_for("clinic.closures_page"))

    return attempt(lambda: closures.remove_closure(closure, actor=current_actor(), now=utcnow()), done=removed,
                   refused=refused)


def _closures(form, status=200):
    today = utcnow().astimezone(clinic_zone()).date()
    return render_template("clinic/closures.html", form=form, closures=closures.upcoming_closures(today)), status
