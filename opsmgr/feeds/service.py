"""Issue, revoke and check feed tokens; build the iCalendar text."""
import hashlib
import secrets
from datetime import timedelta

from icalendar import Calendar, Event
from sqlalchemy import select, update

from opsmgr.audit.service import record
from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.feeds.models import CalendarToken
from opsmgr.permissions import can_use_calendar_feed
from opsmgr.rules.session_states import ACTIVE_STATES
from opsmgr.schedule.models import ClinicSetting
from opsmgr.schedule.service import sessions_between

#: The window a feed covers around today.
PAST, AHEAD = timedelta(days=14), timedelta(days=90)


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def active_token(user):
    return db.session.scalar(select(CalendarToken).where(CalendarToken.user_id == user.id,
                                                         CalendarToken.revoked_at.is_(None)))


def issue_token(user, *, actor, now):
    """A new feed token for the user (any older one is revoked); returned once, stored hashed."""
    revoke_tokens(user, actor=actor, now=now, audit=False)
    token = secrets.token_urlsafe(32)
    db.session.add(CalendarToken(user_id=user.id, token_hash=_hash(token), created_at=now))
    db.session.flush()
    record("calendar.token_issued", actor=actor, now=now, object_type="staff_user", object_id=user.id)
    return token


def revoke_tokens(user, *, actor, now, audit=True):
    result = db.session.execute(update(CalendarToken).where(CalendarToken.user_id == user.id,
                                                            CalendarToken.revoked_at.is_(None))
                                .values(revoked_at=now))
    if audit:
        record("calendar.token_revoked", actor=actor, now=now, object_type="staff_user", object_id=user.id,
               details={"revoked": result.rowcount})
    return result.rowcount


def end_feed_addresses(user, reason, *, actor, now):
    """End every live feed address of a staff member after an account-security event (a role change,
    a password change or reset, signing out everywhere, deactivation): a feed address is a credential,
    so whatever ends the person's sessions ends it too. Audited when one ended; returns how many."""
    ended = revoke_tokens(user, actor=actor, now=now, audit=False)
    if ended:
        record("calendar.token_revoked", actor=actor, now=now, object_type="staff_user", object_id=user.id,
               details={"revoked": ended, "reason": reason})
    return ended


def owner_of(token):
    """The active staff member a live token belongs to, if their role today still has a feed; else None."""
    if not token or len(token) > 100:
        return None
    owner = db.session.scalar(
        select(StaffUser).join(CalendarToken, CalendarToken.user_id == StaffUser.id)
        .where(CalendarToken.token_hash == _hash(token), CalendarToken.revoked_at.is_(None),
               StaffUser.is_active_account.is_(True))
    )
    return owner if can_use_calendar_feed(owner) else None


def build_feed(*, now, chair_id=None, title):
    """The iCalendar text for live sessions around today; patient names only if the clinic allows."""
    setting = db.session.get(ClinicSetting, 1)
    with_names = bool(setting and setting.ical_patient_names)
    calendar = Calendar()
    calendar.add("prodid", "-//opsmgr//infusion schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", title)
    sessions = sessions_between(now - PAST, now + AHEAD, chair_id=chair_id)
    for visit in sessions:
        if visit.state not in ACTIVE_STATES:
            continue
        event = Event()
        event.add("uid", f"session-{visit.id}@opsmgr")
        event.add("dtstamp", now)
        event.add("dtstart", visit.starts_at)
        event.add("dtend", visit.ends_at)
        who = visit.patient.display_name if with_names else "Infusion session"
        event.add("summary", f"{visit.chair.name}: {who}")
        calendar.add_component(event)
    return calendar.to_ical(), len(sessions), with_names
