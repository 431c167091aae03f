"""The clinic's calendar and what is booked, as every booking change reads them: hours and
closures, active chairs and turnover (load_clinic), the patient lock, busy intervals and free slots.

Double booking is prevented by the database, not only the form: every booking change first
locks the chairs and the patient (SELECT … FOR UPDATE on PostgreSQL; on SQLite every write
transaction already holds the database's write lock), checks for collisions, then writes.
A partial unique index on (chair, start) of live sessions is the last line of defence.
"""
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.rules import scheduling
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import ACTIVE_STATES
from opsmgr.schedule.models import Chair, ClinicClosure, ClinicDay, ClinicSetting
from opsmgr.sessions.models import InfusionSession

ACTIVE_VALUES = tuple(sorted(state.value for state in ACTIVE_STATES))


class BookingError(DomainError):
    """A booking that cannot be made, with a message for the field it concerns (None: the whole form)."""

    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


@dataclass(frozen=True)
class Clinic:
    """The clinic's calendar (weekly hours, closures, time zone), its active chairs and turnover."""

    calendar: scheduling.ClinicCalendar
    chair_ids: tuple
    turnover: timedelta

    @property
    def zone(self):
        return self.calendar.zone

    @property
    def open_weekdays(self):
        return self.calendar.open_weekdays

    def hours_on(self, day):
        return self.calendar.hours_on(day)


def load_calendar():
    """Opening hours by weekday and every closure (a short list: a few holidays a year)."""
    hours = {day.weekday: (day.opens_at, day.closes_at) for day in db.session.scalars(select(ClinicDay))
             if day.is_open}
    closures = dict(db.session.execute(select(ClinicClosure.closed_on, ClinicClosure.label)).all())
    return scheduling.ClinicCalendar(hours=hours, closures=closures, zone=current_app.config["CLINIC_TIMEZONE"])


def load_clinic(lock=False):
    """The clinic's calendar and chairs; `lock` locks the active chairs first (every booking change does)."""
    chairs = select(Chair).where(Chair.is_active.is_(True)).order_by(Chair.position, Chair.id)
    if lock:
        chairs = chairs.with_for_update()
    chair_ids = tuple(chair.id for chair in db.session.scalars(chairs))
    setting = db.session.get(ClinicSetting, 1)
    return Clinic(calendar=load_calendar(), chair_ids=chair_ids,
                  turnover=timedelta(minutes=setting.turnover_minutes))


def active_chairs():
    """The active chairs in board order."""
    return db.session.scalars(select(Chair).where(Chair.is_active.is_(True)).order_by(Chair.position, Chair.id)).all()


def lock_patient(patient_id):
    """The patient, locked for the rest of the transaction: one booking change per patient at a time."""
    patient = db.session.scalar(select(Patient).where(Patient.id == patient_id).with_for_update())
    if patient is None:
        raise BookingError("That patient does not exist.")
    return patient


def busy_intervals(start, end, exclude_ids=()):
    """Live sessions overlapping [start, end): (by chair, by patient) interval lists."""
    rows = db.session.execute(
        select(InfusionSession.id, InfusionSession.chair_id, InfusionSession.patient_id,
               InfusionSession.starts_at, InfusionSession.ends_at)
        .where(InfusionSession.status.in_(ACTIVE_VALUES), InfusionSession.starts_at < end,
               InfusionSession.ends_at > start)
    ).all()
    by_chair, by_patient = {}, {}
    for row in rows:
        if row.id in exclude_ids:
            continue
        by_chair.setdefault(row.chair_id, []).append((row.starts_at, row.ends_at))
        by_patient.setdefault(row.patient_id, []).append((row.starts_at, row.ends_at))
    return by_chair, by_patient


def free_slot(clinic, day, preferred_time, duration, chairs, busy_by_chair, patient_busy):
    """(chair id, start) of the first free place on `day` from the preferred local time, or None."""
    hours = clinic.hours_on(day)
    if hours is None:
        return None
    opens, closes = hours
    preferred = scheduling.local_to_utc(day, preferred_time, clinic.zone)
    request = scheduling.SlotRequest(preferred=max(preferred, opens), opens=opens, closes=closes,
                                     duration=duration, turnover=clinic.turnover)
    return scheduling.find_slot(request, chairs, busy_by_chair, patient_busy)
