"""Clinic set-up use cases: chairs, opening hours, scheduling settings and protocol versions."""
from datetime import time
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import clinic_zone
from opsmgr.core.edits import EditConflict, Saved, audit_details, saved_by_audit, saved_by_user
from opsmgr.core.merge import merge_edit
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import ACTIVE_STATES, SessionState
from opsmgr.schedule.models import Chair, ClinicDay, ClinicSetting
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Sessions that still need their chair: booked or under way, not yet discharged.
LIVE_VALUES = tuple(sorted(s.value for s in ACTIVE_STATES - {SessionState.DISCHARGED}))


class ClinicError(DomainError):
    """A change that cannot be made, with a message for the field it concerns (None: the whole form)."""

    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


def _plain(value):
    """A value as it goes into audit details: short and JSON-safe."""
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list):
        return phases_text(value)
    if isinstance(value, str):
        return value[:200]
    return value


def _apply(row, values):
    """Set values on row; {field: [old, new]} for what actually changed."""
    changes = {}
    for name, new in values.items():
        old = getattr(row, name)
        if old != new:
            changes[name] = [_plain(old), _plain(new)]
            setattr(row, name, new)
    return changes


# --- chairs -------------------------------------------------------------------------------------


NAME_TAKEN = "Another chair already has this name."


def _flush_chair():
    """Flush; two admins naming chairs alike at the same moment meet the unique index, not a 500."""
    try:
        db.session.flush()
    except IntegrityError as error:
        raise ClinicError(NAME_TAKEN, field="name") from error


def _name_taken(name, exclude_id=None):
    query = select(Chair.id).where(func.lower(Chair.name) == name.lower())
    if exclude_id is not None:
        query = query.where(Chair.id != exclude_id)
    return db.session.scalar(query) is not None


def create_chair(*, name, position, actor, now):
    """Add an active chair; names are unique regardless of case. No position: after the last."""
    if _name_taken(name):
        raise ClinicError(NAME_TAKEN, field="name")
    if position is None:
        position = (db.session.scalar(select(func.max(Chair.position))) or 0) + 1
    chair = Chair(name=name, position=position, is_active=True)
    db.session.add(chair)
    _flush_chair()
    record("chair.created", actor=actor, now=now, object_type="chair", object_id=chair.id,
           details={"name": name, "position": position})
    return chair


def _live_sessions(chair_id, now):
    """Sessions on the chair that have not ended and are booked or under way, soonest first."""
    return db.session.scalars(
        select(InfusionSession).where(InfusionSession.chair_id == chair_id, InfusionSession.ends_at > now,
                                      InfusionSession.status.in_(LIVE_VALUES))
        .order_by(InfusionSession.starts_at)
    ).all()


def update_chair(chair, *, name, position, is_active, actor, now):
    """Rename, reorder or (de)activate a chair; a chair with live sessions ahead stays active."""
    if _name_taken(name, exclude_id=chair.id):
        raise ClinicError(NAME_TAKEN, field="name")
    if chair.is_active and not is_active:
        live = _live_sessions(chair.id, now)
        if live:
            first = live[0].starts_at.astimezone(clinic_zone())
            raise ClinicError(f"{chair.name} cannot be deactivated: {len(live)} session(s) are still booked on it, "
                              f"the next on {first:%a %d %b %Y at %H:%M}. Move or cancel them first.",
                              field="is_active")
    changes = _apply(chair, {"name": name, "position": position, "is_active": is_active})
    if changes:
        _flush_chair()
        record("chair.updated", actor=actor, now=now, object_type="chair", object_id=chair.id, details=changes)
    return changes


# --- hours and settings -------------------------------------------------------------------------


def clinic_days():
    return db.session.scalars(select(ClinicDay).order_by(ClinicDay.weekday)).all()


def set_hours(days, *, actor, now):
    """Save opening hours: days maps weekday -> (is_open, opens_at, closes_at).

    Returns the changes and how many booked sessions ahead now fall outside the hours, so the
    admin knows to move them (existing bookings are never moved silently).
    """
    changes = {}
    for row in clinic_days():
        is_open, opens_at, closes_at = days[row.weekday]
        if not opens_at < closes_at:
            raise ClinicError(f"{WEEKDAYS[row.weekday]}: the clinic must open before it closes.")
        changed = _apply(row, {"is_open": is_open, "opens_at": opens_at, "closes_at": closes_at})
        changes.update({f"{WEEKDAYS[row.weekday].lower()}_{name}": change for name, change in changed.items()})
    if changes:
        db.session.flush()
        record("clinic.hours_changed", actor=actor, now=now, object_type="clinic_day", details=changes)
    return changes, sessions_outside_hours(now)


def sessions_outside_hours(now):
    """How many live sessions from now on lie on a closed day or outside that day's hours."""
    hours = {day.weekday: day for day in clinic_days()}
    zone = clinic_zone()
    outside = 0
    rows = db.session.execute(select(InfusionSession.starts_at, InfusionSession.ends_at)
                              .where(InfusionSession.ends_at > now, InfusionSession.status.in_(LIVE_VALUES)))
    for starts_at, ends_at in rows:
        start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
        day = hours[start.weekday()]
        if not day.is_open or start.time() < day.opens_at or end.date() != start.date() \
                or end.time() > day.closes_at:
            outside += 1
    return outside


#: The settings form's fields.
SETTING_FIELDS = ("turnover_minutes", "ical_patient_names")


def clinic_setting():
    return db.session.get(ClinicSetting, 1)


def update_settings(values, *, opened=None, pending=(), choices=None, actor, now):
    """Change the chair turnover time and whether calendar feeds may carry patient names, merged with
    any change saved since the form was opened (`opened`: its fingerprints; None: opened on the
    values saved now). Both changed differently: EditConflict until `choices` settle it."""
    # Locked, so a colleague saving at the same moment waits and is then merged with this save.
    setting = db.session.get(ClinicSetting, 1, with_for_update=True, populate_existing=True)
    theirs = {name: getattr(setting, name) for name in SETTING_FIELDS}
    merge = merge_edit({name: values[name] for name in SETTING_FIELDS if name in values}, theirs, opened=opened,
                       pending=pending, choices=choices)
    saved_by = None
    if merge.conflicts or merge.taken_from_theirs:
        saved_by = saved_by_audit("clinic.settings_changed", "clinic_setting", 1, actor)
    if merge.conflicts:
        raise EditConflict(merge, theirs, saved_by)
    changes = _apply(setting, merge.values)
    if changes:
        db.session.flush()
        record("clinic.settings_changed", actor=actor, now=now, object_type="clinic_setting", object_id=1,
               details={**changes, **audit_details(merge)})
    return Saved(setting, merge, saved_by, tuple(changes))


# --- protocols ----------------------------------------------------------------------------------

#: Protocol fields an admin edits; code and route stay with the protocol.
PROTOCOL_FIELDS = (
    "name", "planned_count", "phases", "max_span_days", "max_gap_days", "dose_mg_per_kg", "dose_mg",
    "min_infusion_minutes", "chair_minutes", "observation_minutes", "review_week", "reevaluate_after_days",
    "notes",
)


def current_protocols():
    return db.session.scalars(select(Protocol).where(Protocol.is_current.is_(True)).order_by(Protocol.name)).all()


def current_version(code):
    return db.session.scalar(select(Protocol).where(Protocol.code == code, Protocol.is_current.is_(True)))


def protocol_history(code):
    """Every version of a protocol, newest first: (version, who saved it, how many series use it)."""
    rows = db.session.execute(
        select(Protocol, StaffUser.full_name).outerjoin(StaffUser, StaffUser.id == Protocol.created_by_id)
        .where(Protocol.code == code).order_by(Protocol.version.desc())).all()
    counts = dict(db.session.execute(
        select(InfusionSeries.protocol_id, func.count()).join(Protocol)
        .where(Protocol.code == code).group_by(InfusionSeries.protocol_id)).all())
    return [(version, saved_by or "Installed default", counts.get(version.id, 0)) for version, saved_by in rows]


def form_values(protocol):
    """A protocol's editable fields as the edit form shows them."""
    return {name: getattr(protocol, name) for name in PROTOCOL_FIELDS} | {"phases": phases_text(protocol.phases)}


def revise_protocol(protocol, values, *, pending=(), choices=None, actor, now):
    """Save an edit of version `protocol` as the next version; series already ordered keep theirs.

    An edit of a version that is no longer current is merged with the current one: a field only the
    other save changed keeps its value; one both changed differently refuses the edit (EditConflict)
    until `choices` settle it. Returns Saved with the new version as its row (None: nothing changed).
    """
    current = db.session.scalar(
        select(Protocol).where(Protocol.code == protocol.code, Protocol.is_current.is_(True))
        .with_for_update().execution_options(populate_existing=True))
    if current is None:
        raise ClinicError("This protocol has no current version any more; nothing was saved.")
    base = {name: getattr(protocol, name) for name in PROTOCOL_FIELDS}
    theirs = {name: getattr(current, name) for name in PROTOCOL_FIELDS}
    merge = merge_edit({name: values[name] for name in PROTOCOL_FIELDS if name in values}, theirs, base=base,
                       pending=pending, choices=choices)
    saved_by = None
    if merge.conflicts or merge.taken_from_theirs:
        saved_by = saved_by_user(current.created_by_id, current.created_at, actor)
    if merge.conflicts:
        raise EditConflict(merge, theirs, saved_by, version=current.id)
    edited = merge.values
    changes = {name: [_plain(getattr(current, name)), _plain(new)]
               for name, new in edited.items() if getattr(current, name) != new}
    if not changes:
        return Saved(None, merge, saved_by)
    if "notes" in changes:
        changes["notes"] = "changed"  # free text stays out of the audit trail; both versions keep it
    current.is_current = False
    revised = Protocol(code=current.code, version=current.version + 1, is_current=True, route=current.route,
                       created_at=now, created_by_id=actor.user_id, **edited)
    db.session.add(revised)
    db.session.flush()
    record("protocol.revised", actor=actor, now=now, object_type="protocol", object_id=revised.id,
           details={"code": revised.code, "version": [current.version, revised.version], **changes,
                    **audit_details(merge)})
    return Saved(revised, merge, saved_by, tuple(sorted(changes)))


def phases_text(phases):
    """Phases as an admin types them: "4x2, 4x1" (weeks x sessions a week)."""
    return ", ".join(f"{p['weeks']}x{p['per_week']}" for p in phases)


def describe_phases(phases):
    """Phases in words: "4 weeks × 2 a week, then 4 weeks × 1 a week"."""
    return ", then ".join(f"{p['weeks']} week{'' if p['weeks'] == 1 else 's'} × {p['per_week']} a week"
                          for p in phases)
