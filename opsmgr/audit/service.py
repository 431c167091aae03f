"""Append to the audit chain, verify it, and query it for the audit report."""
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, func, insert, or_, select, update

from opsmgr.audit.anchor import append_anchor
from opsmgr.audit.chain import CHAINED_FIELDS, GENESIS, HEAD_ID, Linker, canonical_details, link_hash
from opsmgr.audit.models import AuditEvent, AuditHead
from opsmgr.core import reads
from opsmgr.extensions import db


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member (from the request) or the system (scheduler, CLI)."""

    user_id: int | None
    username: str | None
    role: str | None
    ip: str | None = None


SYSTEM = Actor(user_id=None, username="system", role=None, ip=None)


def record_event(
    action, *, actor, now, key, outcome="ok", object_type=None, object_id=None,
    patient_id=None, details=None,
):
    """Append one event to the chain inside the caller's transaction; returns its id.

    The head row is locked first (SELECT … FOR UPDATE on PostgreSQL; SQLite transactions
    already hold the write lock), so concurrent writers queue instead of forking the chain.
    """
    head = db.session.execute(_HEAD_FOR_UPDATE).one()
    values = {
        "id": head.last_event_id + 1,
        "occurred_at": now,
        "user_id": actor.user_id,
        "username": actor.username,
        "role": actor.role,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "patient_id": patient_id,
        "outcome": outcome,
        "ip": actor.ip,
        "details": canonical_details(details),
    }
    row_hash = link_hash(key, head.last_hash, values)
    # Core statements built once: the chain is written on every read of patient data, so it skips the
    # ORM's unit of work (the ORM objects of both tables are never kept in a session) and the building
    # of three statements per row.
    db.session.execute(_APPEND, {**values, "prev_hash": head.last_hash, "row_hash": row_hash})
    db.session.execute(_MOVE_HEAD, {"new_event_id": values["id"], "new_hash": row_hash})
    return values["id"]


_HEADS = AuditHead.__table__
_HEAD_FOR_UPDATE = (select(_HEADS.c.last_event_id, _HEADS.c.last_hash).where(_HEADS.c.id == HEAD_ID)
                    .with_for_update())
_APPEND = insert(AuditEvent.__table__)
_MOVE_HEAD = (update(_HEADS).where(_HEADS.c.id == HEAD_ID)
              .values(last_event_id=bindparam("new_event_id"), last_hash=bindparam("new_hash")))


def record(action, *, actor, now, **fields):
    """Append an event keyed with this app's audit key (see record_event); during a read request's
    read phase it is appended in the request's write phase, before the response leaves (core.reads)."""
    key = current_app.config["AUDIT_KEY"]
    reads.write(lambda: record_event(action, actor=actor, now=now, key=key, **fields))


def anchor_head(path, *, now):
    """Copy the chain head to the anchor file outside the database (when it moved)."""
    head = db.session.get(AuditHead, HEAD_ID)
    if head is None or head.last_event_id == 0:
        return False
    return append_anchor(path, event_id=head.last_event_id, row_hash=head.last_hash, now=now)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    problem: str | None = None


def verify_chain(key, batch=2000, anchors=()):
    """Walk the whole chain in id order; report the first row that does not fit, or OK.

    `anchors` are (event id, hash) pairs saved outside the database: the chain must still
    reach each of them with the same hash.
    """
    expected_prev, expected_id, checked = GENESIS, 1, 0
    anchored = {anchor.event_id: anchor.row_hash for anchor in anchors}
    link = Linker(key)
    events = AuditEvent.__table__
    # Plain rows, not ORM objects: the chain is read once, front to back (about 3 x faster per row).
    result = db.session.execute(
        select(*(events.c[name] for name in CHAINED_FIELDS), events.c.prev_hash, events.c.row_hash)
        .order_by(events.c.id).execution_options(yield_per=batch)
    )
    with result:  # closes the server-side cursor on PostgreSQL even when we stop early
        for event in result:
            if event.id != expected_id:
                problem = f"expected event {expected_id} next but found {event.id}: rows missing or inserted"
                return VerifyResult(False, checked, event.id, problem)
            if event.prev_hash != expected_prev:
                problem = "its link to the previous row is broken: a row before it was changed, removed or reordered"
                return VerifyResult(False, checked, event.id, problem)
            recomputed = link(expected_prev, event._mapping)
            if recomputed != event.row_hash:
                problem = "its content does not match its hash: the row was modified"
                return VerifyResult(False, checked, event.id, problem)
            if anchored.get(event.id, recomputed) != recomputed:
                problem = "it differs from the hash anchored outside the database: the chain was rewritten"
                return VerifyResult(False, checked, event.id, problem)
            expected_prev, expected_id, checked = recomputed, expected_id + 1, checked + 1
    last = expected_id - 1
    if anchored and max(anchored) > last:
        problem = (f"the chain ends at event {last} but event {max(anchored)} was anchored outside the "
                   "database: the newest rows were cut off")
        return VerifyResult(False, checked, last or None, problem)
    head = db.session.get(AuditHead, HEAD_ID)
    if head is None:
        return VerifyResult(False, checked, None, "the chain head record is missing")
    if head.last_event_id != expected_id - 1 or head.last_hash != expected_prev:
        return VerifyResult(False, checked, expected_id - 1 or None,
                            f"the chain ends at event {expected_id - 1} but the head records event "
                            f"{head.last_event_id}: the newest rows were cut off or the head was altered")
    return VerifyResult(True, checked)


#: Columns the audit report may sort by (an allowlist: never a column name from the request).
SORTABLE = {
    "time": AuditEvent.id, "user": AuditEvent.username, "role": AuditEvent.role,
    "action": AuditEvent.action, "object": AuditEvent.object_type,
    "patient": AuditEvent.patient_id, "outcome": AuditEvent.outcome, "ip": AuditEvent.ip,
}


#: How the report and its CSV export word an event's outcome: the same words in both.
OUTCOME_WORDS = {"ok": "Allowed", "denied": "Denied"}


@dataclass(frozen=True)
class AuditFilter:
    #: A username (whole) or part of a staff member's name, any case.
    username: str | None = None
    #: A patient's MRN (whole, any case).
    mrn: str | None = None
    patient_id: int | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    outcome: str | None = None
    sort: str = "time"
    descending: bool = True


def filtered_events(criteria):
    """A select of audit events matching the report's filters, in the chosen order."""
    from opsmgr.auth.models import StaffUser
    from opsmgr.patients.models import Patient, mrn_key

    query = select(AuditEvent)
    if criteria.username:
        text = criteria.username.strip().lower()
        named = select(StaffUser.id).where(func.lower(StaffUser.full_name).contains(text, autoescape=True))
        query = query.where(or_(AuditEvent.username == text, AuditEvent.user_id.in_(named)))
    if criteria.mrn:
        query = query.where(AuditEvent.patient_id.in_(
            select(Patient.id).where(Patient.mrn_key == mrn_key(criteria.mrn))))
    if criteria.patient_id is not None:
        query = query.where(AuditEvent.patient_id == criteria.patient_id)
    if criteria.action:
        query = query.where(AuditEvent.action == criteria.action)
    if criteria.outcome:
        query = query.where(AuditEvent.outcome == criteria.outcome)
    if criteria.start is not None:
        query = query.where(AuditEvent.occurred_at >= criteria.start)
    if criteria.end is not None:
        query = query.where(AuditEvent.occurred_at < criteria.end)
    column = SORTABLE.get(criteria.sort, AuditEvent.id)
    order = column.desc() if criteria.descending else column.asc()
    return query.order_by(order, AuditEvent.id.desc() if criteria.descending else AuditEvent.id)


def with_names(query):
    """The events of `query` as (event, patient MRN, staff member's name) rows, in the same one statement:
    the report shows people and patients as staff know them, not by internal numbers."""
    from opsmgr.auth.models import StaffUser
    from opsmgr.patients.models import Patient

    return (query.add_columns(Patient.mrn, StaffUser.full_name)
            .outerjoin(Patient, Patient.id == AuditEvent.patient_id)
            .outerjoin(StaffUser, StaffUser.id == AuditEvent.user_id))
