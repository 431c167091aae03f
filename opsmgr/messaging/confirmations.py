"""Session confirmations: whether the patient confirmed a session (a YES reply, or a call staff
recorded), shown in words on the calendar, the board and the session page.

A confirmation holds for the start it confirmed: a session moved since is "void", and shows so
until the patient confirms again. Nothing is deleted when a session moves; the state is read.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsmgr.audit.service import record
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.messaging.models import SessionConfirmation
from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import SessionState
from opsmgr.sessions.models import InfusionSession

#: A YES confirms the patient's next session starting within this time. Reminders go 48 h and 24 h
#: ahead (policy reminder_first_hours / reminder_second_hours); 72 h leaves a day to answer the first.
REPLY_WINDOW = timedelta(hours=72)
#: How staff may record a confirmation, as the session page offers it.
STAFF_CHANNELS = {"phone": "By phone", "in_person": "In person"}
VIA_WORDS = {"sms": "by text", "phone": "by phone", "in_person": "in person"}


@dataclass(frozen=True)
class ConfirmationState:
    #: "confirmed", "unconfirmed" or "void" (confirmed, then the session moved).
    kind: str
    via: str | None = None
    confirmed_at: datetime | None = None

    @property
    def words(self):
        """What the page says (never colour alone): "Confirmed by text", "Not confirmed", …"""
        if self.kind == "confirmed":
            return f"Confirmed {VIA_WORDS.get(self.via, self.via)}"
        if self.kind == "void":
            return "Not confirmed: moved after the patient confirmed"
        return "Not confirmed"


UNCONFIRMED = ConfirmationState("unconfirmed")


def confirmation_state(visit, confirmation):
    """The state of `visit`'s confirmation row (or None): confirmed only for the start it confirmed."""
    if confirmation is None:
        return UNCONFIRMED
    if confirmation.starts_at != visit.starts_at:
        return ConfirmationState("void", confirmation.via, confirmation.confirmed_at)
    return ConfirmationState("confirmed", confirmation.via, confirmation.confirmed_at)


def confirmations_for(visits):
    """{session id: ConfirmationState} for the listed sessions that are still to come (scheduled), in one query."""
    upcoming = [visit for visit in visits if visit.status == SessionState.SCHEDULED]
    if not upcoming:
        return {}
    rows = {row.session_id: row for row in db.session.scalars(
        select(SessionConfirmation).where(SessionConfirmation.session_id.in_([visit.id for visit in upcoming])))}
    return {visit.id: confirmation_state(visit, rows.get(visit.id)) for visit in upcoming}


def next_session_to_confirm(patient_id, *, now):
    """The patient's next scheduled session starting within REPLY_WINDOW, or None."""
    return db.session.scalars(
        select(InfusionSession)
        .where(InfusionSession.patient_id == patient_id, InfusionSession.status == SessionState.SCHEDULED.value,
               InfusionSession.starts_at > now, InfusionSession.starts_at <= now + REPLY_WINDOW)
        .order_by(InfusionSession.starts_at, InfusionSession.id).limit(1)
    ).first()


def confirm(visit, *, via, recorded_by_id, now):
    """Record that the patient confirmed `visit` at its current start, replacing an earlier confirmation
    (one upsert: two replies at once cannot collide on the key)."""
    dialect = db.session.get_bind().dialect.name
    values = {"starts_at": visit.starts_at, "confirmed_at": now, "via": via, "recorded_by_id": recorded_by_id}
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(SessionConfirmation)
    db.session.execute(insert.values(session_id=visit.id, **values)
                       .on_conflict_do_update(index_elements=["session_id"], set_=values))


def record_confirmation(visit, *, via, actor, now):
    """Staff record that the patient confirmed a session (a call, at the desk); refused once it has begun."""
    if via not in STAFF_CHANNELS:
        raise DomainError([Problem("via", "Choose how the patient confirmed.")])
    if visit.status != SessionState.SCHEDULED or visit.starts_at <= now:
        raise DomainError([Problem("via", "Only a session still to come can be confirmed.")])
    confirm(visit, via=via, recorded_by_id=actor.user_id, now=now)
    record("session.confirmed", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"via": via})
