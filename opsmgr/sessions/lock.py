"""The service-layer lock on signed sessions: every ORM flush is checked before it writes.

A flush that would insert, change or delete any row of a session whose note is signed (the
session row, the note, the checklist, overrides, dose, controlled substance, vitals, alerts,
infusion events, discharge, adverse events) raises ``RecordLocked`` and writes nothing. Paths
that skip the ORM's unit of work (Core ``update()``, raw SQL) meet the database triggers of
migration c4d5e6f7a8b9 instead; the tests try both.
"""
from itertools import chain

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from opsmgr.core.errors import RecordLocked
from opsmgr.notes.models import SessionNote
from opsmgr.sessions.models import InfusionSession
from opsmgr.sessions.record import LOCKED_MODELS

SIGNED_MESSAGE = ("This session's record was signed by a physician and can no longer change. "
                  "Corrections go in an addendum to the note.")


def _committed(obj, name):
    """The value an attribute had when loaded (before changes in this transaction)."""
    state = inspect(obj)
    return state.committed_state.get(name, getattr(obj, name)) if state.persistent else None


def _session_ids(obj):
    if isinstance(obj, InfusionSession):
        return {obj.id}
    return {obj.session_id, _committed(obj, "session_id")}


@event.listens_for(Session, "before_flush")
def refuse_changes_to_signed_sessions(orm_session, flush_context, instances):
    touched = set()
    for obj in chain(orm_session.new, orm_session.dirty, orm_session.deleted):
        if not isinstance(obj, LOCKED_MODELS):
            continue
        if obj in orm_session.dirty and obj not in orm_session.deleted and not orm_session.is_modified(obj):
            continue
        if isinstance(obj, SessionNote) and _committed(obj, "signed_at") is not None:
            raise RecordLocked("infusion_session", obj.session_id, SIGNED_MESSAGE)
        touched |= _session_ids(obj)
    touched.discard(None)
    if not touched:
        return
    with orm_session.no_autoflush:
        signed = orm_session.execute(
            select(SessionNote.session_id).where(SessionNote.session_id.in_(touched),
                                                 SessionNote.signed_at.is_not(None)).limit(1)
        ).scalar()
    if signed is not None:
        raise RecordLocked("infusion_session", signed, SIGNED_MESSAGE)

