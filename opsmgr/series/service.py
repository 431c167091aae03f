"""Infusion series: a physician's order (the series with its sessions planned on free chairs) and stopping it.

Ordering books through the schedule's helpers, so it takes the same locks and collision checks as any
other booking; a refusal is the schedule's BookingError, with the field it concerns.
"""
from datetime import time, timedelta

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.rules import scheduling
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.service import BookingError, busy_intervals, free_slot, load_clinic, lock_patient
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession


def order_series(*, patient_id, protocol_id, indication, dose_mg_per_kg, dose_mg, planned_count, start_on,
                 preferred_time, reevaluate_on, actor, now, today):
    """A physician's order: the series and its planned sessions on free chairs, with plan warnings."""
    problem = scheduling.start_problem(start_on, today)
    if problem:
        raise BookingError(problem, field="start_on")
    protocol = db.session.get(Protocol, protocol_id)
    if protocol is None or not protocol.is_current:
        raise BookingError("Choose a current protocol.", field="protocol_id")
    clinic = load_clinic(lock=True)
    patient = lock_patient(patient_id)
    if not clinic.chair_ids:
        raise BookingError("The clinic has no active chairs; an administrator adds them under Clinic.")
    if not clinic.open_weekdays:
        raise BookingError("The clinic has no open days; an administrator sets the hours under Clinic.")
    dates = scheduling.plan_dates(start_on, scheduling.phases_from(protocol.phases), planned_count,
                                  clinic.open_weekdays)
    if reevaluate_on is None and protocol.reevaluate_after_days:
        # Boosters: unless the physician chose a date, re-evaluate the protocol's interval after the last session.
        reevaluate_on = dates[-1] + timedelta(days=protocol.reevaluate_after_days)
    duration = timedelta(minutes=protocol.chair_minutes)
    first, last = scheduling.local_to_utc(dates[0], time.min, clinic.zone), \
        scheduling.local_to_utc(dates[-1] + timedelta(days=1), time.min, clinic.zone)
    busy_by_chair, busy_by_patient = busy_intervals(first - timedelta(days=1), last + timedelta(days=1))
    patient_busy = busy_by_patient.get(patient.id, [])
    series = InfusionSeries(patient_id=patient.id, protocol=protocol, indication=indication,
                            dose_mg_per_kg=dose_mg_per_kg, dose_mg=dose_mg, planned_count=planned_count,
                            start_on=start_on, preferred_time=preferred_time.strftime("%H:%M"),
                            reevaluate_on=reevaluate_on, status="planned", ordered_by_id=actor.user_id,
                            ordered_at=now, warnings=[])
    db.session.add(series)
    for sequence, day in enumerate(dates, start=1):
        found = free_slot(clinic, day, preferred_time, duration, clinic.chair_ids, busy_by_chair, patient_busy)
        if found is None:
            raise BookingError(f"No chair is free on {day:%A %d %B %Y} for {protocol.chair_minutes} minutes "
                               "within clinic hours. Choose another start date or time.", field="start_on")
        chair_id, starts_at = found
        ends_at = starts_at + duration
        busy_by_chair.setdefault(chair_id, []).append((starts_at, ends_at))
        patient_busy.append((starts_at, ends_at))
        series.sessions.append(InfusionSession(patient_id=patient.id, chair_id=chair_id, sequence=sequence,
                                               starts_at=starts_at, ends_at=ends_at,
                                               status=SessionState.SCHEDULED.value))
    warnings = scheduling.plan_warnings(dates, max_gap_days=protocol.max_gap_days,
                                        max_span_days=protocol.max_span_days)
    series.warnings = [{"code": w.code, "message": w.message} for w in warnings]
    db.session.flush()
    record("series.ordered", actor=actor, now=now, object_type="infusion_series", object_id=series.id,
           patient_id=patient.id, details={"protocol": protocol.code, "protocol_version": protocol.version,
                                           "sessions": len(dates), "warnings": [w.code for w in warnings]})
    return series


def stop_series(series, *, reason, actor, now):
    """Stop a series: its future scheduled sessions are cancelled with the same reason."""
    if series.status in {"completed", "stopped"}:
        raise BookingError(f"This series is already {series.status}.")
    if not reason.strip():
        raise BookingError("Give a reason for stopping the series.", field="reason")
    series.status, series.stop_reason = "stopped", reason.strip()[:300]
    cancelled = []
    for visit in series.sessions:
        if visit.state == SessionState.SCHEDULED:
            visit.status, visit.status_reason, visit.status_changed_at = "cancelled", "Series stopped", now
            cancelled.append(visit.id)
    db.session.flush()
    record("series.stopped", actor=actor, now=now, object_type="infusion_series", object_id=series.id,
           patient_id=series.patient_id, details={"cancelled_sessions": cancelled})
