"""Booking a session and the session page with its actions: move, change status, move to today."""
from datetime import time
from types import SimpleNamespace

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.messaging.confirmations import STAFF_CHANNELS, confirmations_for
from opsmgr.notes.service import status_by_session
from opsmgr.patients.forms import SearchForm
from opsmgr.patients.models import Patient
from opsmgr.patients.service import search_patients
from opsmgr.permissions import (
    can_advance_session,
    can_book_sessions,
    can_move_session,
    can_override_same_day,
    can_record_past_session,
    can_view_schedule,
)
from opsmgr.rules.notes import next_step
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule import service
from opsmgr.schedule.clinic import ACTIVE_VALUES
from opsmgr.schedule.forms import BookForm, MoveForm, RecordPastForm, StatusForm
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession
from opsmgr.sessions.service import session_or_404

bp = Blueprint("schedule", __name__)


def _today():
    return utcnow().astimezone(clinic_zone()).date()


#: Patients listed per search on the booking form.
SEARCH_SIZE = 10


def _open_series(patient_id):
    """The patient's planned and active series, each with its protocol, order date and live sessions booked."""
    series_list = db.session.scalars(
        select(InfusionSeries).where(InfusionSeries.patient_id == patient_id,
                                     InfusionSeries.status.in_(("planned", "active")))
        .options(joinedload(InfusionSeries.protocol)).order_by(InfusionSeries.ordered_at, InfusionSeries.id)).all()
    booked = dict(db.session.execute(
        select(InfusionSession.series_id, func.count()).where(
            InfusionSession.series_id.in_([series.id for series in series_list]),
            InfusionSession.status.in_(ACTIVE_VALUES)).group_by(InfusionSession.series_id)).all())
    return [SimpleNamespace(id=series.id, label=(
        f"{series.protocol.label} · {series.status} · {_booked_words(booked.get(series.id, 0), series.planned_count)}"
        f" · ordered {series.ordered_at.astimezone(clinic_zone()):%d %b %Y}")) for series in series_list]


def _booked_words(booked, planned):
    if booked <= planned:
        return f"{booked} of {planned} planned session{'s' if planned != 1 else ''} booked"
    return f"{booked} sessions booked, more than the {planned} planned"


def _open_series_counts(patient_ids):
    """{patient id: how many planned or active series}, for the search results."""
    return dict(db.session.execute(
        select(InfusionSeries.patient_id, func.count()).where(
            InfusionSeries.patient_id.in_(patient_ids), InfusionSeries.status.in_(("planned", "active")))
        .group_by(InfusionSeries.patient_id)).all())


@bp.route("/schedule/book", methods=["GET", "POST"])
@requires(can_book_sessions)
def book():
    form, patient = _booking_form(BookForm)
    if request.method == "POST" and form.validate():
        return _attempt_booking(form, patient, "booked", lambda: service.book_session(
            **_booking_values(form), actor=current_actor(), now=utcnow()))
    return _render_booking(form, patient)


@bp.route("/schedule/record-past", methods=["GET", "POST"])
@requires(can_record_past_session)
def record_past():
    """A session that already happened, never booked ahead: recorded by a physician, marked and audited."""
    form, patient = _booking_form(RecordPastForm)
    if request.method == "POST" and form.validate():
        return _attempt_booking(form, patient, "recorded after the fact", lambda: service.record_past_session(
            **_booking_values(form), reason=form.reason.data, actor=current_actor(), now=utcnow()))
    return _render_booking(form, patient)


def _booking_form(form_class):
    """The booking form from the post, or from the schedule's free slot (chair, day and start) with defaults,
    and the patient whose series it offers: the one chosen from the search, or the posted series' patient."""
    form = form_class(formdata=request.form if request.method == "POST" else request.args,
                      meta={"csrf": request.method == "POST"})
    if request.method == "GET" and not request.args.get("day"):
        form.day.data = _today()
    if request.method == "GET" and not request.args.get("start_time"):
        form.start_time.data = time(9, 0)
    form.set_chairs(service.active_chairs())
    patient_id = form.chosen_patient_id
    if request.method == "POST" and isinstance(form.series_id.data, int):
        series = db.session.get(InfusionSeries, form.series_id.data)
        patient_id = series.patient_id if series else patient_id
    patient = db.session.get(Patient, patient_id) if patient_id else None
    form.set_series(_open_series(patient.id) if patient else [], preselect=request.method == "GET")
    if patient:
        form.patient_id.data = str(patient.id)
    return form.for_user(can_override_same_day(current_user)), patient


def _render_booking(form, patient, code=200):
    """Step one, no patient yet: the search and its results; step two: the patient's series and the slot."""
    search, results, total = SearchForm(request.args), [], 0
    if patient is None and request.method == "GET" and (request.args.get("q") or request.args.get("dob")) \
            and search.validate():
        results, total, _ = search_patients(search.q.data, search.dob.data, page=1, page_size=SEARCH_SIZE,
                                            actor=current_actor(), now=utcnow())
    if patient is not None:
        record("booking.patient_shown", actor=current_actor(), now=utcnow(), object_type="patient",
               object_id=patient.id, patient_id=patient.id)
    carry = {key: request.args[key] for key in ("chair_id", "day", "start_time") if request.args.get(key)}
    html = render_template("schedule/book.html", form=form, patient=patient, search=search, results=results,
                           total=total, series_counts=_open_series_counts([p.id for p in results]) if results else {},
                           carry=carry, endpoint=request.endpoint)
    db.session.commit()
    return html, code


def _booking_values(form):
    return {"series_id": form.series_id.data, "chair_id": form.chair_id.data, "day": form.day.data,
            "start_time": form.start_time.data, "same_day_reason": form.override_reason}


def _attempt_booking(form, patient, done_words, call):
    def booked(visit):
        flash(f"Session {visit.number} of the series {done_words}: {visit.patient.display_name}, "
              f"{visit.starts_at.astimezone(clinic_zone()):%H:%M} on {visit.chair.name}.", "success")
        return redirect(url_for("worklists.week", day=form.day.data.isoformat()))

    def refused(error):
        show_at_fields(form, error, "start_time")
        return _render_booking(form, patient, 400)

    # The unique index on (chair, start) of live sessions is the last line of defence against a double booking.
    return attempt(call, done=booked, refused=refused,
                   conflict=lambda _: refused(service.BookingError(service.CHAIR_TAKEN, "chair_id")))


def _render_session(visit, move_form=None, status_form=None, code=200, day_refused=False, move_error=None):
    """The session page; `day_refused`: a check-in was just refused for the day, `move_error`: why
    moving it to today was refused (both shown next to the "Move it to today" button)."""
    zone = current_app.config["CLINIC_TIMEZONE"]
    local = service.as_local(visit.starts_at, zone)
    move_form = move_form or MoveForm(chair_id=visit.chair_id, day=local.date(), start_time=local.time())
    move_form.set_chairs(service.active_chairs())
    move_form.for_user(can_override_same_day(current_user))
    overridden_by = db.session.get(StaffUser, visit.same_day_override_by_id) if visit.same_day_override_by_id else None
    note_status = status_by_session([visit.id]).get(visit.id)
    confirmation = confirmations_for([visit]).get(visit.id)
    other_day = service.other_day_problem(visit, utcnow()) if visit.state == SessionState.SCHEDULED else None
    html = render_template("schedule/session.html", session=visit, move_form=move_form,
                           status_form=status_form or StatusForm(),
                           targets=service.allowed_targets(current_user, visit),
                           allowed_targets=service.allowed_targets, other_day=other_day, day_refused=day_refused,
                           move_error=move_error, overridden_by=overridden_by,
                           next_action=next_step(visit.state, note_status), note_status=note_status,
                           confirmation=confirmation, confirm_channels=STAFF_CHANNELS)
    return html, code


@bp.route("/sessions/<int:session_id>")
@requires(can_view_schedule)
def session_detail(session_id):
    visit = session_or_404(session_id)
    html, code = _render_session(visit)
    record("session.viewed", actor=current_actor(), now=utcnow(), object_type="infusion_session",
           object_id=visit.id, patient_id=visit.patient_id)
    db.session.commit()
    return html, code


@bp.route("/sessions/<int:session_id>/move", methods=["POST"])
@requires(can_move_session)
def move(session_id):
    visit = session_or_404(session_id)
    form = MoveForm().for_user(can_override_same_day(current_user))
    form.set_chairs(service.active_chairs())
    if not form.validate_on_submit():
        return _render_session(visit, move_form=form, code=400)

    def moved(ids):
        flash(f"Session moved{f'; {len(ids) - 1} later sessions shifted' if len(ids) > 1 else ''}.", "success")
        return redirect(url_for("schedule.session_detail", session_id=session_id))

    def refused(error):
        show_at_fields(form, error, "day")
        return _render_session(session_or_404(session_id), move_form=form, code=400)

    return attempt(lambda: service.move_session(visit, chair_id=form.chair_id.data, day=form.day.data,
                                                start_time=form.start_time.data, shift_rest=form.shift_rest.data,
                                                same_day_reason=form.override_reason, actor=current_actor(),
                                                now=utcnow()),
                   done=moved, refused=refused)


@bp.route("/sessions/<int:session_id>/status", methods=["POST"])
@requires(can_view_schedule)
def change_status(session_id):
    visit = session_or_404(session_id)
    form = StatusForm()
    if not form.validate_on_submit() or form.target.data not in SessionState.__members__.values():
        return _render_session(visit, status_form=form, code=400)
    target = SessionState(form.target.data)
    if not service.may_set_status(current_user, visit, target):
        abort(403)

    def changed(_):
        flash(f"{visit.patient.display_name}: {target.label}.", "success")
        return redirect(_back_to(session_id))

    def refused(error):
        if isinstance(error, service.OtherDay):  # said beside the "Move it to today" action instead
            return _render_session(session_or_404(session_id), code=400, day_refused=True)
        show_at_fields(form, error, "reason")
        return _render_session(session_or_404(session_id), status_form=form, code=400)

    return attempt(lambda: service.change_status(visit, target, reason=form.reason.data or "",
                                                 actor=current_actor(), now=utcnow()),
                   done=changed, refused=refused)


@bp.route("/sessions/<int:session_id>/move-to-today", methods=["POST"])
@requires(can_advance_session)
def move_to_today(session_id):
    """The patient came on another day than booked: whoever checks them in moves the session to today."""
    visit = session_or_404(session_id)

    def moved(_):
        flash(f"Moved to today, {visit.starts_at.astimezone(clinic_zone()):%H:%M} on {visit.chair.name}. "
              "Check the patient in when they are ready.", "success")
        return redirect(url_for("schedule.session_detail", session_id=session_id))

    return attempt(lambda: service.move_to_today(visit, actor=current_actor(), now=utcnow()), done=moved,
                   refused=lambda error: _render_session(session_or_404(session_id), code=409,
                                                         move_error=str(error)))


def _back_to(session_id):
    target = request.form.get("next", "")
    return target if target in {"/today", "/schedule"} else url_for("schedule.session_detail", session_id=session_id)


