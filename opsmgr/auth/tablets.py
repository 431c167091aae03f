"""Chair tablets: enrolment by an admin, the screen lock on idle, and the PIN that resumes it.

A tablet login is a StaffSession with a TabletSession row: idle locks it (the session stays, marked
locked) instead of ending it; only the same person's PIN reopens it, and too many wrong PINs end it.
Each function flushes; the caller commits.
"""
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from opsmgr.audit.service import record
from opsmgr.auth.models import ChairTablet, StaffSession, TabletSession
from opsmgr.auth.passwords import access_policy, hash_password, spend_verify_time, verify_password
from opsmgr.auth.service import AccountError, reauthenticate, token_hash
from opsmgr.extensions import db
from opsmgr.rules.access import pin_problems


class PinLockout(AccountError):
    """The locked session ended (too many wrong PINs, or no PIN to resume with): a full sign-in is next."""


def find_tablet(device_token):
    """The enrolled, unrevoked tablet whose cookie carries `device_token`, or None."""
    if not device_token:
        return None
    return db.session.scalar(select(ChairTablet).where(ChairTablet.token_hash == token_hash(device_token),
                                                       ChairTablet.revoked_at.is_(None)))


def list_tablets():
    return db.session.scalars(select(ChairTablet).options(joinedload(ChairTablet.enrolled_by))
                              .order_by(ChairTablet.revoked_at.is_not(None), ChairTablet.name, ChairTablet.id)).all()


def enrol_tablet(name, *, actor, now, replacing=None):
    """Enrol the device the admin is using as a chair tablet; returns (tablet, the cookie's token).

    `replacing`: the tablet this device was enrolled as until now (its cookie is about to be replaced),
    revoked so that no enrolment outlives its cookie.
    """
    name = " ".join(name.split())
    if not name:
        raise AccountError("Give the tablet a name, such as Chair 3 tablet.", field="name")
    if replacing is not None:
        revoke_tablet(replacing, actor=actor, now=now)
    token = secrets.token_urlsafe(32)
    tablet = ChairTablet(name=name, token_hash=token_hash(token), enrolled_at=now, enrolled_by_id=actor.user_id)
    db.session.add(tablet)
    db.session.flush()
    record("tablet.enrolled", actor=actor, now=now, object_type="chair_tablet", object_id=tablet.id,
           details={"name": name})
    return tablet, token


def revoke_tablet(tablet, *, actor, now):
    """Revoke a tablet: its cookie opens nothing more, and every session open on it ends."""
    if tablet.revoked_at is not None:
        return 0
    tablet.revoked_at, tablet.revoked_by_id = now, actor.user_id
    on_it = select(TabletSession.staff_session_id).where(TabletSession.tablet_id == tablet.id)
    ended = db.session.execute(update(StaffSession).where(StaffSession.id.in_(on_it), StaffSession.ended_at.is_(None))
                               .values(ended_at=now, end_reason="tablet_revoked")).rowcount
    db.session.flush()
    record("tablet.revoked", actor=actor, now=now, object_type="chair_tablet", object_id=tablet.id,
           details={"name": tablet.name, "sessions_ended": ended})
    return ended


def _tablet_session(user):
    # Fresh from the database: the session loader may have just locked it with a Core update.
    return db.session.scalar(select(TabletSession).where(TabletSession.staff_session_id == user.staff_session_id)
                             .with_for_update().execution_options(populate_existing=True))


def _end(user, reason, now):
    db.session.execute(update(StaffSession).where(StaffSession.id == user.staff_session_id,
                                                  StaffSession.ended_at.is_(None))
                       .values(ended_at=now, end_reason=reason))
    db.session.flush()


def lock_screen(user, *, actor, now, reason="idle"):
    """Lock this tablet session's screen now (the page's idle timer, or "Lock"); True if it stays open.

    Without a PIN there is nothing to resume with: the session ends and a full sign-in is next.
    A desktop session is left as it is (False only when a session ended).
    """
    on_tablet = _tablet_session(user)
    if on_tablet is None:
        return True
    if user.pin_hash is None:
        _end(user, "idle", now)
        record("session.locked", actor=actor, now=now, object_type="staff_session", object_id=user.staff_session_id,
               details={"reason": reason, "pin_set": False, "signed_out": True})
        return False
    if on_tablet.locked_at is None:
        on_tablet.locked_at, on_tablet.failed_pin_count = now, 0
        db.session.flush()
        record("session.locked", actor=actor, now=now, object_type="staff_session", object_id=user.staff_session_id,
               details={"reason": reason, "pin_set": True})
    return True


def unlock_screen(user, pin, *, actor, now):
    """Resume a locked tablet screen with the signed-in person's PIN.

    A wrong PIN is counted and audited (AccountError at the field); at the limit the session ends
    (PinLockout), so a PIN can be guessed at most `pin_attempts` times per full sign-in.
    """
    on_tablet = _tablet_session(user)
    if on_tablet is None or on_tablet.locked_at is None:
        return
    if user.pin_hash is None:
        spend_verify_time()
        _end(user, "idle", now)
        record("session.unlock_failed", actor=actor, now=now, outcome="denied", object_type="staff_session",
               object_id=user.staff_session_id, details={"reason": "no_pin", "signed_out": True})
        raise PinLockout("No PIN is set for this account: sign in with your password.", audited=True)
    if not verify_password(user.pin_hash, pin or ""):
        _count_wrong_pin(user, on_tablet, actor, now)
    on_tablet.locked_at, on_tablet.failed_pin_count = None, 0
    db.session.execute(update(StaffSession).where(StaffSession.id == user.staff_session_id).values(last_seen_at=now))
    db.session.flush()
    record("session.unlocked", actor=actor, now=now, object_type="staff_session", object_id=user.staff_session_id)


def _count_wrong_pin(user, on_tablet, actor, now):
    db.session.execute(update(TabletSession).where(TabletSession.staff_session_id == on_tablet.staff_session_id)
                       .values(failed_pin_count=TabletSession.failed_pin_count + 1))
    db.session.refresh(on_tablet)
    failures, allowed = on_tablet.failed_pin_count, access_policy().pin_attempts
    record("session.unlock_failed", actor=actor, now=now, outcome="denied", object_type="staff_session",
           object_id=user.staff_session_id, details={"reason": "wrong_pin", "consecutive_failures": failures})
    if failures >= allowed:
        _end(user, "pin_lockout", now)
        record("session.pin_lockout", actor=actor, now=now, outcome="denied", object_type="staff_session",
               object_id=user.staff_session_id, details={"failures": failures})
        raise PinLockout("Too many wrong PINs: sign in again with your username and password.", audited=True)
    left = allowed - failures
    raise AccountError(f"That PIN is not correct. {left} {'try' if left == 1 else 'tries'} left before you must "
                       "sign in again.", field="pin", audited=True)


def set_pin(user, *, password, pin, actor, now):
    """A staff member sets (or changes) their own tablet PIN, confirming it with their password."""
    if not reauthenticate(user, password, ip=actor.ip, now=now, purpose="pin_change"):
        raise AccountError("The password is not correct.", field="password", audited=True)
    problems = pin_problems(pin)
    if problems:
        raise AccountError(" ".join(problems), field="pin")
    first = user.pin_hash is None
    user.pin_hash, user.pin_changed_at = hash_password(pin), now
    db.session.flush()
    record("pin.changed", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"first_pin": first})
