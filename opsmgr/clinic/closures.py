"""Holiday closures: days the clinic is closed although their weekday is open. Nothing is booked on
one (the booking checks read them with the hours); sessions already booked that day are not moved
but counted, so the admin can move them. Past closures stay on record."""
from datetime import time, timedelta

from sqlalchemy import func, select

from opsmgr.audit.service import record
from opsmgr.clinic.service import LIVE_VALUES, ClinicError
from opsmgr.core.clock import clinic_zone
from opsmgr.extensions import db
from opsmgr.rules.scheduling import clinic_day, local_to_utc, short_day
from opsmgr.schedule.models import ClinicClosure
from opsmgr.sessions.models import InfusionSession


def upcoming_closures(today):
    """Closures from today on, soonest first."""
    return db.session.scalars(select(ClinicClosure).where(ClinicClosure.closed_on >= today)
                              .order_by(ClinicClosure.closed_on)).all()


def add_closure(*, closed_on, label, actor, now):
    """Close the clinic on a day (today or later); returns the closure and how many live sessions are
    booked that day (they are not moved)."""
    zone = clinic_zone()
    if closed_on < clinic_day(now, zone.key):
        raise ClinicError("A closure is for today or a later day.", field="closed_on")
    existing = db.session.scalar(select(ClinicClosure).where(ClinicClosure.closed_on == closed_on))
    if existing is not None:
        raise ClinicError(f"{short_day(closed_on)} {closed_on.year} is already closed ({existing.label}).",
                          field="closed_on")
    closure = ClinicClosure(closed_on=closed_on, label=label.strip(), created_by_id=actor.user_id, created_at=now)
    db.session.add(closure)
    db.session.flush()
    record("clinic.closure_added", actor=actor, now=now, object_type="clinic_closure", object_id=closure.id,
           details={"closed_on": closed_on.isoformat(), "label": closure.label})
    return closure, _booked_on(closed_on, zone.key)


def remove_closure(closure, *, actor, now):
    """Open a closed day again (today or later; a past closure stays on record)."""
    if closure.closed_on < clinic_day(now, clinic_zone().key):
        raise ClinicError("A past closure stays on record; only today's and later ones can be removed.")
    details = {"closed_on": closure.closed_on.isoformat(), "label": closure.label}
    db.session.delete(closure)
    db.session.flush()
    record("clinic.closure_removed", actor=actor, now=now, object_type="clinic_closure", object_id=closure.id,
           details=details)


def _booked_on(day, zone):
    """Live sessions starting on clinic day `day`."""
    start, end = local_to_utc(day, time.min, zone), local_to_utc(day + timedelta(days=1), time.min, zone)
    return db.session.scalar(select(func.count()).select_from(InfusionSession).where(
        InfusionSession.starts_at >= start, InfusionSession.starts_at < end, InfusionSession.status.in_(LIVE_VALUES)))
