"""Infusion series: a physician's order in two steps, and stopping a series.

Ordering never moves a time silently: plan_series works out where each session would go (and why,
whenever that is not the day and time asked) without writing anything; the physician sees that plan
and confirms it; order_series works the plan out again under the booking locks and books it only if
it is still the plan the physician confirmed (otherwise PlanChanged carries the new plan to show).
It books through the schedule's helpers, so it takes the same locks and collision checks as any
other booking; a refusal is the schedule's BookingError, with the field it concerns.
"""
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.policy.service import current_policy
from opsmgr.rules import booking, scheduling
from opsmgr.rules.session_states import SessionState
from opsmgr.schedule.clinic import ACTIVE_VALUES, BookingError, busy_intervals, load_clinic, lock_patient
from opsmgr.schedule.models import Chair
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession

#: Series that hold their sessions: a new one of the same route may not overlap them.
LIVE_SERIES = ("planned", "active")


@dataclass(frozen=True)
class SeriesOrder:
    """A physician's order as given (the protocol's values where a field was left empty)."""

    patient_id: int
    protocol_id: int
    indication: str
    dose_mg_per_kg: Decimal | None
    dose_mg: int | None
    planned_count: int
    start_on: date
    preferred_time: time
    reevaluate_on: date | None


@dataclass(frozen=True)
class SeriesPlan:
    """Where each session of an order would go, with the protocol's warnings, as the physician sees it."""

    protocol_name: str
    placements: tuple
    warnings: tuple
    reevaluate_on: date | None
    #: Chair id -> name, for the page.
    chair_names: dict

    @property
    def code(self):
        return booking.plan_code(self.placements)

    @property
    def bookable(self):
        return all(p.is_placed for p in self.placements)

    @property
    def moved(self):
        return sum(1 for p in self.placements if p.is_placed and not p.as_asked)


class PlanChanged(BookingError):
    """The plan worked out at confirmation is not the one the physician confirmed (a chair was taken
    meanwhile): nothing is booked, and the new plan is shown to confirm again."""

    def __init__(self, plan):
        super().__init__("The plan changed since you saw it (someone booked meanwhile). Nothing was booked: check "
                         "each session below and confirm again.")
        self.plan, self.audited = plan, True


def plan_series(order, *, now, lock=False):
    """The plan for an order, writing nothing; refused (at the field) when the order cannot be planned."""
    clinic = load_clinic(lock=lock)
    problem = scheduling.start_problem(order.start_on, scheduling.clinic_day(now, clinic.zone))
    if problem:
        raise BookingError(problem, field="start_on")
    protocol = db.session.get(Protocol, order.protocol_id)
    if protocol is None or not protocol.is_current:
        raise BookingError("Choose a current protocol.", field="protocol_id")
    _, policy = current_policy()
    problem = booking.count_problem(order.planned_count, protocol.planned_count, policy.series_extra_sessions,
                                    protocol.name)
    if problem:
        raise BookingError(problem, field="planned_count")
    patient = lock_patient(order.patient_id) if lock else db.session.get(Patient, order.patient_id)
    if patient is None:
        raise BookingError("That patient does not exist.")
    if not clinic.chair_ids:
        raise BookingError("The clinic has no active chairs; an administrator adds them under Clinic.")
    if not clinic.open_weekdays:
        raise BookingError("The clinic has no open days; an administrator sets the hours under Clinic.")
    days = scheduling.plan_days(order.start_on, scheduling.phases_from(protocol.phases), order.planned_count,
                                clinic.open_weekdays, clinic.calendar.closed_days)
    problem = booking.overlap_problem(days[0][1], days[-1][1], _live_series_spans(patient.id, protocol.route, clinic))
    if problem:
        raise BookingError(problem, field="start_on")
    placements = _place(clinic, protocol, order, days, now)
    reevaluate_on = order.reevaluate_on
    if reevaluate_on is None and protocol.reevaluate_after_days:
        # Boosters: unless the physician chose a date, re-evaluate the protocol's interval after the last session.
        reevaluate_on = days[-1][1] + timedelta(days=protocol.reevaluate_after_days)
    warnings = scheduling.plan_warnings([day for _, day in days], max_gap_days=protocol.max_gap_days,
                                        max_span_days=protocol.max_span_days)
    names = dict(db.session.execute(select(Chair.id, Chair.name).where(Chair.id.in_(clinic.chair_ids))).all())
    return SeriesPlan(protocol_name=protocol.name, placements=placements, warnings=warnings,
                      reevaluate_on=reevaluate_on, chair_names=names)


def _live_series_spans(patient_id, route, clinic):
    """The patient's planned and active series of this route, each with the days of its first and last live session."""
    rows = db.session.execute(
        select(Protocol.name, func.min(InfusionSession.starts_at), func.max(InfusionSession.starts_at))
        .join(InfusionSeries, InfusionSeries.protocol_id == Protocol.id)
        .join(InfusionSession, InfusionSession.series_id == InfusionSeries.id)
        .where(InfusionSeries.patient_id == patient_id, InfusionSeries.status.in_(LIVE_SERIES),
               Protocol.route == route, InfusionSession.status.in_(ACTIVE_VALUES))
        .group_by(InfusionSeries.id, Protocol.name).order_by(InfusionSeries.id)).all()
    return [booking.SeriesSpan(f"the series {name}", scheduling.clinic_day(first, clinic.zone),
                               scheduling.clinic_day(last, clinic.zone)) for name, first, last in rows]


def _place(clinic, protocol, order, days, now):
    """A placement per planned day, each taking its chair before the next is placed."""
    search = booking.Search(calendar=clinic.calendar, duration=timedelta(minutes=protocol.chair_minutes),
                            turnover=clinic.turnover, chair_ids=clinic.chair_ids, now=now)
    first = scheduling.local_to_utc(days[0][1], time.min, clinic.zone)
    last = scheduling.local_to_utc(days[-1][1] + timedelta(days=1), time.min, clinic.zone)
    busy_by_chair, busy_by_patient = busy_intervals(first - timedelta(days=1), last + timedelta(days=1))
    patient_busy = busy_by_patient.get(order.patient_id, [])
    placements = []
    for asked_on, day in days:
        placement = booking.place_session(search, asked_on, day, order.preferred_time, busy_by_chair, patient_busy)
        if placement.is_placed:
            held = (placement.starts_at, placement.starts_at + search.duration)
            busy_by_chair.setdefault(placement.chair_id, []).append(held)
            patient_busy.append(held)
        placements.append(placement)
    return tuple(placements)


def preview_series(order, *, actor, now):
    """The plan the physician confirms before anything is booked (a read, audited)."""
    plan = plan_series(order, now=now)
    record("series.previewed", actor=actor, now=now, object_type="patient", object_id=order.patient_id,
           patient_id=order.patient_id, details=_plan_details(order, plan))
    return plan


def _plan_details(order, plan):
    return {"protocol_id": order.protocol_id, "sessions": len(plan.placements), "moved": plan.moved,
            "unplaced": sum(1 for p in plan.placements if not p.is_placed)}


def order_series(order, *, confirmed, actor, now):
    """Book the series as the physician confirmed it (`confirmed`: the plan's code they saw), with the
    protocol's warnings; if the plan is not the same any more, PlanChanged (nothing booked)."""
    plan = plan_series(order, now=now, lock=True)
    if not plan.bookable or plan.code != confirmed:
        record("series.plan_changed", actor=actor, now=now, object_type="patient", object_id=order.patient_id,
               patient_id=order.patient_id, details=_plan_details(order, plan))
        raise PlanChanged(plan)
    protocol = db.session.get(Protocol, order.protocol_id)
    series = InfusionSeries(patient_id=order.patient_id, protocol=protocol, indication=order.indication,
                            dose_mg_per_kg=order.dose_mg_per_kg, dose_mg=order.dose_mg,
                            planned_count=order.planned_count, start_on=order.start_on,
                            preferred_time=order.preferred_time.strftime("%H:%M"), reevaluate_on=plan.reevaluate_on,
                            status="planned", ordered_by_id=actor.user_id, ordered_at=now,
                            warnings=[{"code": w.code, "message": w.message} for w in plan.warnings])
    db.session.add(series)
    duration = timedelta(minutes=protocol.chair_minutes)
    for sequence, placement in enumerate(plan.placements, start=1):
        series.sessions.append(InfusionSession(patient_id=order.patient_id, chair_id=placement.chair_id,
                                               sequence=sequence, starts_at=placement.starts_at,
                                               ends_at=placement.starts_at + duration,
                                               status=SessionState.SCHEDULED.value))
    db.session.flush()
    record("series.ordered", actor=actor, now=now, object_type="infusion_series", object_id=series.id,
           patient_id=order.patient_id, details={"protocol": protocol.code, "protocol_version": protocol.version,
                                                 "sessions": len(plan.placements), "moved": plan.moved,
                                                 "warnings": [w.code for w in plan.warnings]})
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
