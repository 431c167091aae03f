"""Booking sessions on chairs: book, record a past session, move (and shift the rest), move to today,
cancel, advance. The calendar, locks and busy intervals they share with ordering a series are in
opsmgr.schedule.clinic; every booking is checked the same way (_check_free): not in the past, on an
open day within its hours, chair and patient free, and one infusion per patient per clinic day unless
a physician overrides it with a reason (kept on the session and audited).
"""
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.permissions import can_advance_session, can_cancel_session, can_mark_no_show
from opsmgr.rules import booking, scheduling
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import (
    GATED_STATES,
    MOVABLE_STATES,
    TRANSITIONS,
    SessionState,
    transition_problem,
)
from opsmgr.schedule.clinic import (  # noqa: F401 - ACTIVE_VALUES, active_chairs: part of this module's API
    ACTIVE_VALUES,
    BookingError,
    active_chairs,
    busy_intervals,
    free_slot,
    load_clinic,
    lock_patient,
)
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession

#: Which permission allows entering each state; any other state needs can_advance_session.
STATUS_PERMISSION = {
    SessionState.CANCELLED: can_cancel_session,
    SessionState.NO_SHOW: can_mark_no_show,
}


class OtherDay(BookingError):
    """A check-in refused because the session is booked for another clinic day; the page offers
    to move it to today (its field is the day, as for the checklist's same refusal)."""

    def __init__(self, message):
        super().__init__(message, field="day")


CHAIR_TAKEN = ("That chair is already booked at this time (including turnover). "
               "Someone may have just booked it; choose another time or chair.")


ALREADY_BOOKED = ("This patient already has a session starting at this time: it may have just been booked "
                  "(from another tab, or before going Back). Nothing new was booked; check the schedule.")


def _check_free(clinic, exclude_ids, patient_id, chair_id, starts_at, ends_at, *, now, same_day_reason=None,
                past=False):
    """Refuse a booking that cannot be made, at its field; True when it is the patient's second
    infusion that clinic day and a physician's reason overrides that. `past`: the session already
    happened (recorded after the fact), so it must lie before now instead of after."""
    when = _not_past_problem if past else booking.past_problem
    problem = when(starts_at, now, clinic.zone)
    problem = problem or scheduling.hours_problem(clinic.calendar, starts_at, ends_at)
    if problem:
        raise BookingError(problem.message, field=problem.field)
    if chair_id not in clinic.chair_ids:
        raise BookingError("Choose an active chair.", field="chair_id")
    day_start, day_end = local_day_bounds(scheduling.clinic_day(starts_at, clinic.zone), clinic.zone)
    by_chair, by_patient = busy_intervals(min(starts_at - clinic.turnover, day_start),
                                          max(ends_at + clinic.turnover, day_end), exclude_ids=exclude_ids)
    patient_busy = by_patient.get(patient_id, ())
    if any(s == starts_at for s, _e in patient_busy):  # e.g. sent again after Back, or from a second tab
        raise BookingError(ALREADY_BOOKED, field="start_time")
    if any(scheduling.overlaps(starts_at, ends_at, s, e, clinic.turnover) for s, e in by_chair.get(chair_id, ())):
        raise BookingError(CHAIR_TAKEN, field="chair_id")
    if any(scheduling.overlaps(starts_at, ends_at, s, e) for s, e in patient_busy):
        raise BookingError("The patient already has a session at this time.", field="start_time")
    second = booking.same_day_problem(starts_at, patient_busy, clinic.zone)
    if second and not (same_day_reason or "").strip():
        raise BookingError(second, field="same_day_reason")
    return bool(second)


def _not_past_problem(starts_at, now, zone):
    """A session recorded after the fact started before now."""
    if starts_at < now:
        return None
    return Problem("start_time", f"That time is not past yet (it is {scheduling.clock_text(now, zone)} now): "
                                 "book the session instead.")


def _mark_same_day(visit, overridden, reason, actor):
    """Keep a physician's same-day override on the session (or clear one a move no longer needs)."""
    visit.same_day_reason = reason.strip()[:300] if overridden else None
    visit.same_day_override_by_id = actor.user_id if overridden else None


def _zone(clinic):
    return ZoneInfo(clinic.zone)


def book_session(*, series_id, chair_id, day, start_time, actor, now, same_day_reason=None):
    """Add one session to a series at a chosen chair and local time (click-to-book), from now on."""
    return _add_session(series_id=series_id, chair_id=chair_id, day=day, start_time=start_time, actor=actor,
                        now=now, same_day_reason=same_day_reason)


def record_past_session(*, series_id, chair_id, day, start_time, reason, actor, now, same_day_reason=None):
    """A physician records a session that already happened and was never booked: the same checks as a
    booking, but before now; the session is marked recorded after the fact, with the reason."""
    if not (reason or "").strip():
        raise BookingError("Say why this session is recorded after the fact.", field="reason")
    return _add_session(series_id=series_id, chair_id=chair_id, day=day, start_time=start_time, actor=actor,
                        now=now, same_day_reason=same_day_reason, late_reason=reason.strip()[:300])


def _add_session(*, series_id, chair_id, day, start_time, actor, now, same_day_reason, late_reason=None):
    clinic = load_clinic(lock=True)
    series = db.session.get(InfusionSeries, series_id)
    if series is None or series.status in {"completed", "stopped"}:
        raise BookingError("Choose a planned or active series.", field="series_id")
    lock_patient(series.patient_id)
    starts_at = scheduling.local_to_utc(day, start_time, clinic.zone)
    ends_at = starts_at + timedelta(minutes=series.protocol.chair_minutes)
    overridden = _check_free(clinic, (), series.patient_id, chair_id, starts_at, ends_at, now=now,
                             same_day_reason=same_day_reason, past=late_reason is not None)
    sequence = max((s.sequence for s in series.sessions), default=0) + 1
    visit = InfusionSession(series=series, patient_id=series.patient_id, chair_id=chair_id, sequence=sequence,
                            starts_at=starts_at, ends_at=ends_at, status=SessionState.SCHEDULED.value,
                            recorded_late_reason=late_reason)
    _mark_same_day(visit, overridden, same_day_reason, actor)
    db.session.add(visit)
    db.session.flush()
    record("session.recorded_late" if late_reason else "session.booked", actor=actor, now=now,
           object_type="infusion_session", object_id=visit.id, patient_id=series.patient_id,
           details={"chair_id": chair_id, "starts_at": starts_at.isoformat(), "same_day_override": overridden})
    return visit


def move_session(visit, *, chair_id, day, start_time, shift_rest, actor, now, same_day_reason=None):
    """Move one scheduled session; optionally shift the later scheduled ones by the same days.

    All new places are worked out first, then written one row at a time in the direction of
    travel, so no row ever lands on a place another session of the series still holds.
    """
    if visit.state not in MOVABLE_STATES:
        raise BookingError(f"A session that is {visit.state.label.lower()} cannot be moved.")
    clinic = load_clinic(lock=True)
    lock_patient(visit.patient_id)
    zone = _zone(clinic)
    old_start = visit.starts_at
    starts_at = scheduling.local_to_utc(day, start_time, clinic.zone)
    duration = visit.ends_at - visit.starts_at
    delta_days = (day - old_start.astimezone(zone).date()).days
    later = [s for s in visit.series.sessions if (s.starts_at, s.id) > (old_start, visit.id)
             and s.state in MOVABLE_STATES] if shift_rest and delta_days else []
    exclude = (visit.id, *(s.id for s in later))
    overridden = _check_free(clinic, exclude, visit.patient_id, chair_id, starts_at, starts_at + duration, now=now,
                             same_day_reason=same_day_reason)
    plan = [(visit, chair_id, starts_at)]
    plan += _plan_shift(clinic, visit, later, delta_days, (chair_id, starts_at, starts_at + duration), exclude)
    forward = starts_at > old_start
    for item, new_chair, new_start in sorted(plan, key=lambda step: (step[0].starts_at, step[0].id), reverse=forward):
        length = item.ends_at - item.starts_at
        item.chair_id, item.starts_at, item.ends_at = new_chair, new_start, new_start + length
        db.session.flush()
    _mark_same_day(visit, overridden, same_day_reason, actor)
    db.session.flush()
    record("session.moved", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"from": old_start.isoformat(), "to": starts_at.isoformat(),
                                                   "chair_id": chair_id, "shifted": [s.id for s in later],
                                                   "same_day_override": overridden})
    return [visit.id, *(s.id for s in later)]


def move_to_today(visit, *, actor, now):
    """Move a session booked on another day to today's earliest free start from now, on its own
    chair when that one is free then: the patient is here, so the nurse can check them in.

    Only this session moves (the rest of the series keeps its days), through move_session and so
    through every booking check: chair and patient free, clinic hours, turnover.
    """
    if visit.state not in MOVABLE_STATES:
        raise BookingError(f"A session that is {visit.state.label.lower()} cannot be moved.")
    clinic = load_clinic(lock=True)
    lock_patient(visit.patient_id)
    today = scheduling.clinic_day(now, clinic.zone)
    if scheduling.clinic_day(visit.starts_at, clinic.zone) == today:
        raise BookingError("This session is already booked for today.")
    chair_id, starts_at = _first_free_today(clinic, visit, today, now)
    move_session(visit, chair_id=chair_id, day=today, start_time=as_local(starts_at, clinic.zone).time(),
                 shift_rest=False, actor=actor, now=now)
    return visit


def _first_free_today(clinic, visit, today, now):
    """(chair id, start) of the earliest free place today from now (next quarter hour), own chair first."""
    hours = clinic.hours_on(today)
    if hours is None:
        raise BookingError("The clinic is closed today, so the session cannot be moved to today.")
    opens, closes = hours
    duration = visit.ends_at - visit.starts_at
    minutes = int(duration.total_seconds() // 60)
    earliest = max(opens, scheduling.round_up(now, timedelta(minutes=15)))
    if earliest + duration > closes:
        raise BookingError(f"A {minutes}-minute session no longer fits before closing today "
                           f"({as_local(closes, clinic.zone):%H:%M}).")
    chairs = (visit.chair_id, *[c for c in clinic.chair_ids if c != visit.chair_id]) \
        if visit.chair_id in clinic.chair_ids else clinic.chair_ids
    busy_by_chair, busy_by_patient = busy_intervals(earliest - clinic.turnover, closes + clinic.turnover,
                                                    exclude_ids=(visit.id,))
    request = scheduling.SlotRequest(preferred=earliest, opens=earliest, closes=closes, duration=duration,
                                     turnover=clinic.turnover)
    found = scheduling.find_slot(request, chairs, busy_by_chair, busy_by_patient.get(visit.patient_id, []))
    if found is None:
        raise BookingError(f"No chair is free today from {as_local(earliest, clinic.zone):%H:%M} to closing "
                           f"for {minutes} minutes. A coordinator can book another time.")
    return found


def _plan_shift(clinic, visit, later, delta_days, moved_slot, exclude):
    """New (session, chair, start) for each later session, moved by delta_days onto open days."""
    if not later:
        return []
    zone = _zone(clinic)
    old_days = [s.starts_at.astimezone(zone).date() for s in later]
    new_days = scheduling.shifted_dates(old_days, delta_days, clinic.open_weekdays, clinic.calendar.closed_days)
    window_start = scheduling.local_to_utc(min(new_days), time.min, clinic.zone)
    window_end = scheduling.local_to_utc(max(new_days) + timedelta(days=1), time.min, clinic.zone)
    busy_by_chair, busy_by_patient = busy_intervals(window_start, window_end, exclude_ids=exclude)
    moved_chair, moved_start, moved_end = moved_slot
    busy_by_chair.setdefault(moved_chair, []).append((moved_start, moved_end))
    patient_busy = busy_by_patient.get(visit.patient_id, []) + [(moved_start, moved_end)]
    plan = []
    for item, day in zip(later, new_days, strict=True):
        if booking.same_day_session(day, patient_busy, clinic.zone) is not None:
            raise BookingError(f"Session {item.number} cannot be shifted to {day:%A %d %B}: the patient already has a "
                               "session that day. Nothing was moved; move the sessions one by one instead.")
        duration = item.ends_at - item.starts_at
        chairs = (item.chair_id, *[c for c in clinic.chair_ids if c != item.chair_id])
        found = free_slot(clinic, day, item.starts_at.astimezone(zone).time(), duration, chairs, busy_by_chair,
                          patient_busy)
        if found is None:
            raise BookingError(f"Session {item.number} cannot be shifted to {day:%A %d %B}: no chair is free. "
                               "Nothing was moved; move the sessions one by one instead.")
        chair_id, starts_at = found
        busy_by_chair.setdefault(chair_id, []).append((starts_at, starts_at + duration))
        patient_busy.append((starts_at, starts_at + duration))
        plan.append((item, chair_id, starts_at))
    return plan


def may_set_status(user, visit, target):
    """Whether this user may move the session to `target` (its permission, not the state machine)."""
    return STATUS_PERMISSION.get(target, can_advance_session)(user, visit)


def allowed_targets(user, visit):
    """The states this user may move the session to next (for buttons)."""
    return [target for target in sorted(TRANSITIONS[visit.state], key=list(SessionState).index)
            if target not in GATED_STATES and target != SessionState.CHECKLIST
            and may_set_status(user, visit, target)]


def change_status(visit, target, *, reason, actor, now, gate_passed=False):
    """Move a session through the state machine; an illegal step is refused with the reason.

    Gated states (cleared, infusing, discharged) are entered only by the gate services, which
    pass gate_passed=True after their checks. A check-in is refused on any day but the session's
    own (clinic time); callers that pass gate_passed vouch for their step themselves (the demo
    seed walks past days' sessions through the states).
    """
    target = SessionState(target)
    if target in GATED_STATES and not gate_passed:
        raise BookingError(f"'{target.label}' is set by its own step (checklist, start of dose or discharge), "
                           "where the safety checks run; it cannot be set directly.")
    problem = transition_problem(visit.state, target, reason)
    if problem:
        # An allowed step refused is refused for its missing reason; any other step is not on offer.
        raise BookingError(problem, field="reason" if target in TRANSITIONS[visit.state] else None)
    if target == SessionState.CHECKED_IN and not gate_passed:
        problem = other_day_problem(visit, now)
        if problem:
            raise OtherDay(problem)
    old = visit.status
    visit.status, visit.status_reason, visit.status_changed_at = target.value, reason.strip()[:300], now
    series = visit.series
    if target == SessionState.CHECKED_IN and series.status == "planned":
        series.status = "active"
    if all(s.state in {SessionState.DISCHARGED, SessionState.CANCELLED, SessionState.NO_SHOW}
           for s in series.sessions) and series.status in {"planned", "active"}:
        series.status = "completed"
    db.session.flush()
    record(f"session.{target.value}", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"from": old, "to": target.value})


def other_day_problem(visit, now):
    """Why `session` cannot be checked in or have its checklist changed at `now`: it is booked for
    another clinic day. None on its own day."""
    return scheduling.booked_day_problem(visit.starts_at, now, current_app.config["CLINIC_TIMEZONE"],
                                         movable=visit.state in MOVABLE_STATES)


def sessions_between(start, end, chair_id=None):
    """Sessions starting in [start, end) with patient, chair and protocol joined in (one statement
    whatever the number: selectinload would batch the IN list every 500 rows)."""
    query = (select(InfusionSession)
             .where(InfusionSession.starts_at >= start, InfusionSession.starts_at < end)
             .options(joinedload(InfusionSession.patient), joinedload(InfusionSession.chair),
                      joinedload(InfusionSession.series).joinedload(InfusionSeries.protocol))
             .order_by(InfusionSession.chair_id, InfusionSession.starts_at))
    if chair_id is not None:
        query = query.where(InfusionSession.chair_id == chair_id)
    return db.session.scalars(query).all()


def local_day_bounds(day: date, zone: str):
    return (scheduling.local_to_utc(day, time.min, zone),
            scheduling.local_to_utc(day + timedelta(days=1), time.min, zone))


def as_local(moment: datetime, zone: str):
    return moment.astimezone(ZoneInfo(zone))
