"""Staff use cases: sign in and out, session lifetime, accounts and passwords.

Each function flushes; the caller (view, CLI, job) commits.
"""
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update

from opsmgr.audit.service import SYSTEM, Actor, record
from opsmgr.auth.models import ChairTablet, Role, SignInFailure, StaffSession, StaffUser, TabletSession
from opsmgr.auth.passwords import (
    access_policy,
    hash_password,
    needs_rehash,
    new_password_problems,
    spend_verify_time,
    verify_password,
)
from opsmgr.core import reads
from opsmgr.core.refusals import DomainError
from opsmgr.core.submissions import Submission
from opsmgr.extensions import db
from opsmgr.feeds.service import end_feed_addresses
from opsmgr.rules.access import (
    is_address_over_limit,
    is_lock_due,
    is_locked,
    lock_after_failure,
    session_end_reason,
    throttle_address,
)
from opsmgr.rules.findings import Problem
from opsmgr.twofactor.models import TwoFactor


class AccountError(DomainError):
    """A refused account change, with a message fit to show next to the field; `audited`: the refusal
    wrote its audit event, which the request keeps."""

    def __init__(self, message, field=None, *, audited=False):
        super().__init__([Problem(field, message)], audited=audited)


def actor_for(user, ip=None):
    return Actor(user_id=user.id, username=user.username, role=user.role, ip=ip)


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


_token_hash = token_hash


def find_user(username):
    return db.session.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    token: str | None
    #: The password was right and the user has two-factor on: no session yet, the code step follows.
    needs_code: bool = False

    @property
    def ok(self):
        return self.user is not None


def authenticate(username, password, *, ip, now, tablet=None):
    """Check a login attempt; on success open a server-side session and return its token.

    Unknown users, wrong passwords, locked and deactivated accounts, and a client address over its
    limit all fail alike to the caller, each after one password-hash verification (so no answer is
    faster than another); the audit trail records which it was. Every failure counts against the
    client's address; an address over its limit is refused unheard, so its tries count toward no
    account's lockout. On an enrolled chair `tablet` the session locks on idle instead of ending.
    A user with two-factor on gets no session yet (needs_code): twofactor.service.complete_sign_in
    opens it after the code.
    """
    attempted = username.strip().lower()[:64]
    anonymous = Actor(user_id=None, username=attempted, role=None, ip=ip)
    policy, address = access_policy(), throttle_address(ip)
    if is_address_over_limit(_recent_address_failures(address, now, policy), policy):
        spend_verify_time()
        record("login.failed", actor=anonymous, now=now, outcome="denied", details={"reason": "address_limit"})
        return LoginResult(None, None)
    # FOR NO KEY UPDATE: concurrent sign-ins to one account queue here (the failure count stays exact), while
    # the foreign-key checks of the account's other sessions (FOR KEY SHARE, e.g. their audit rows) do not
    # wait for it; plain FOR UPDATE deadlocked with a colleague session's write holding the audit head.
    user = db.session.scalar(
        select(StaffUser).where(StaffUser.username == attempted).with_for_update(key_share=True)
    )
    if user is None or not user.is_active_account:
        spend_verify_time()
        reason = "unknown_user" if user is None else "deactivated"
        record("login.failed", actor=anonymous if user is None else actor_for(user, ip),
               now=now, outcome="denied", details={"reason": reason})
        return _failed(address, now)
    actor = actor_for(user, ip)
    if is_locked(user.locked_until, now):
        spend_verify_time()
        record("login.failed", actor=actor, now=now, outcome="denied", details={"reason": "locked"})
        return _failed(address, now)
    if user.locked_until is not None:
        user.locked_until, user.failed_login_count = None, 0
        record("account.unlocked", actor=actor, now=now, object_type="staff_user", object_id=user.id)
    if not verify_password(user.password_hash, password):
        _count_failure(user, actor, now, "login.failed")
        return _failed(address, now)
    user.failed_login_count = 0
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if db.session.scalar(select(TwoFactor.confirmed_at).where(TwoFactor.user_id == user.id)) is not None:
        record("login.password_accepted", actor=actor, now=now, object_type="staff_user", object_id=user.id)
        db.session.flush()
        return LoginResult(user, None, needs_code=True)
    token = start_session(user, ip=ip, now=now, tablet=tablet)
    record("login.succeeded", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"tablet_id": tablet.id} if tablet is not None else None)
    return LoginResult(user, token)


def _recent_address_failures(address, now, policy):
    return db.session.scalar(select(func.count()).select_from(SignInFailure).where(
        SignInFailure.address == address, SignInFailure.failed_at > now - policy.address_window))


def _failed(address, now):
    """Count one failed sign-in against the client's address (the per-address limit)."""
    db.session.add(SignInFailure(address=address, failed_at=now))
    db.session.flush()
    return LoginResult(None, None)


def forget_sign_in_failures(*, now):
    """Delete address failures older than the window (the sweep); they no longer count."""
    window = access_policy().address_window
    return db.session.execute(delete(SignInFailure).where(SignInFailure.failed_at <= now - window)).rowcount


def _count_failure(user, actor, now, action, **details):
    """Count one wrong password in the database (atomically) and lock the account at the threshold."""
    db.session.execute(
        update(StaffUser).where(StaffUser.id == user.id)
        .values(failed_login_count=StaffUser.failed_login_count + 1)
    )
    db.session.refresh(user)
    lock_until = lock_after_failure(user.failed_login_count, now, access_policy())
    record(action, actor=actor, now=now, outcome="denied",
           details={"reason": "wrong_password", "consecutive_failures": user.failed_login_count, **details})
    if lock_until is not None:
        user.locked_until = lock_until
        record("account.locked", actor=actor, now=now, outcome="denied", object_type="staff_user",
               object_id=user.id, details={"until": lock_until.isoformat(timespec="seconds")})
    db.session.flush()


def reauthenticate(user, password, *, ip, now, purpose):
    """Check a signed-in person's password again (overrides, witnessing, later signing).

    Wrong passwords count toward the same lockout as sign-in, so a re-entry prompt cannot be
    used to guess a password; a locked or deactivated account is refused outright.
    """
    actor = actor_for(user, ip)
    if not user.is_active_account or is_locked(user.locked_until, now):
        spend_verify_time()
        record("reauth.failed", actor=actor, now=now, outcome="denied",
               details={"reason": "locked_or_inactive", "purpose": purpose})
        return False
    if not verify_password(user.password_hash, password or ""):
        _count_failure(user, actor, now, "reauth.failed", purpose=purpose)
        return False
    if user.failed_login_count:
        user.failed_login_count = 0
        db.session.flush()
    return True


def start_session(user, *, ip, now, tablet=None):
    """Open a new server-side session (a fresh identifier at every login) and return its token."""
    token = secrets.token_urlsafe(32)
    staff_session = StaffSession(token_hash=_token_hash(token), user=user, created_at=now, last_seen_at=now, ip=ip)
    db.session.add(staff_session)
    db.session.flush()
    if tablet is not None:
        db.session.add(TabletSession(staff_session_id=staff_session.id, tablet_id=tablet.id, failed_pin_count=0))
        db.session.flush()
    user.session_token, user.staff_session_id = token, staff_session.id
    return token


def resume_session(token, *, now, touch=True, device_token=None):
    """The user behind a session token, touching its last-seen time (unless `touch` is false: a page's
    own background poll is not the user's activity); None if it has ended.

    A session past its idle or absolute limit is ended here, audited as a timeout. A session opened
    on a chair tablet is only valid with that tablet's cookie (`device_token`); idle locks it instead
    (user.is_screen_locked), or ends it when its user has no PIN to resume with.
    Returns (user, end_reason) where end_reason says why a live-looking session just ended.
    """
    if not token:
        return None, None
    row = db.session.execute(_RESUME, {"token_hash": _token_hash(token)}).first()
    if row is None or row.StaffSession.ended_at is not None:
        return None, None
    staff_session, user, on_tablet, tablet_hash = row
    if not user.is_active_account:
        _end_by_id(staff_session.id, "deactivated", now)
        return None, "deactivated"
    if on_tablet is not None and (not device_token or _token_hash(device_token) != tablet_hash):
        _end_by_id(staff_session.id, "other_device", now)
        return None, "other_device"
    policy = access_policy()
    reason = session_end_reason(staff_session.created_at, staff_session.last_seen_at, now, policy,
                                on_tablet=on_tablet is not None and user.pin_hash is not None)
    if reason is not None:
        _end_by_id(staff_session.id, reason.value, now)
        record("session.timeout", actor=actor_for(user), now=now, object_type="staff_session",
               object_id=staff_session.id, details={"limit": reason.value})
        return None, reason.value
    user.session_token, user.staff_session_id = token, staff_session.id
    if on_tablet is not None:
        user.tablet_lock_seconds = int(policy.tablet_lock_timeout.total_seconds())
        if on_tablet.locked_at is not None:
            user.is_screen_locked = True
            return user, None
        if is_lock_due(staff_session.last_seen_at, now, policy):
            return _lock_on_idle(user, staff_session.id, now)
    session_id = staff_session.id
    if touch:
        # A read request saves the touch with its audit rows, after the page is built (core.reads).
        reads.write(lambda: db.session.execute(_TOUCH, {"session_id": session_id, "now": now}))
    return user, None


#: Every signed-in request runs these two: built once.
_RESUME = (select(StaffSession, StaffUser, TabletSession, ChairTablet.token_hash).select_from(StaffSession)
           .join(StaffUser, StaffUser.id == StaffSession.user_id)
           .outerjoin(TabletSession, TabletSession.staff_session_id == StaffSession.id)
           .outerjoin(ChairTablet, ChairTablet.id == TabletSession.tablet_id)
           .where(StaffSession.token_hash == bindparam("token_hash")))
_TOUCH = (update(StaffSession.__table__).where(StaffSession.__table__.c.id == bindparam("session_id"))
          .values(last_seen_at=bindparam("now", type_=StaffSession.last_seen_at.type)))


def _lock_on_idle(user, staff_session_id, now):
    """A tablet session idle past its lock time: locked (queued like the touch), or ended without a PIN."""
    pin_set = user.pin_hash is not None
    record("session.locked", actor=actor_for(user), now=now, object_type="staff_session", object_id=staff_session_id,
           details={"reason": "idle", "pin_set": pin_set, "signed_out": not pin_set})
    if not pin_set:
        _end_by_id(staff_session_id, "idle", now)
        return None, "idle"
    tablet_sessions = TabletSession.__table__
    reads.write(lambda: db.session.execute(
        update(tablet_sessions).where(tablet_sessions.c.staff_session_id == staff_session_id,
                                      tablet_sessions.c.locked_at.is_(None))
        .values(locked_at=now, failed_pin_count=0)))
    user.is_screen_locked = True
    return user, None


def _end_by_id(staff_session_id, reason, now):
    """End a session found while resuming one (in a read request, in its write phase)."""
    reads.write(lambda: db.session.execute(
        update(StaffSession).where(StaffSession.id == staff_session_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)))


def _end(staff_session, reason, now):
    staff_session.ended_at, staff_session.end_reason = now, reason
    db.session.flush()


def end_session(token, *, actor, now, reason="logout"):
    """End one session on the server, so its cookie no longer opens anything."""
    staff_session = db.session.scalar(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    if staff_session is None or staff_session.ended_at is not None:
        return
    _end(staff_session, reason, now)
    record("logout", actor=actor, now=now, object_type="staff_session", object_id=staff_session.id)


def end_user_sessions(user, *, reason, now, keep_token=None):
    """End every open session of a user (optionally all but the caller's own); returns how many."""
    query = update(StaffSession).where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
    if keep_token:
        query = query.where(StaffSession.token_hash != _token_hash(keep_token))
    result = db.session.execute(query.values(ended_at=now, end_reason=reason))
    db.session.flush()
    return result.rowcount


def expire_idle_sessions(*, now):
    """End and audit every open session past its limits (the scheduler's sweep)."""
    policy = access_policy()
    rows = db.session.execute(
        select(StaffSession, StaffUser, TabletSession.staff_session_id).select_from(StaffSession)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .outerjoin(TabletSession, TabletSession.staff_session_id == StaffSession.id)
        .where(StaffSession.ended_at.is_(None), StaffSession.last_seen_at < now - policy.idle_timeout)
    ).all()
    for staff_session, user, on_tablet in rows:
        # A tablet session locks on idle and lasts to its absolute limit; without a PIN it is a desktop's.
        reason = session_end_reason(staff_session.created_at, staff_session.last_seen_at, now, policy,
                                    on_tablet=on_tablet is not None and user.pin_hash is not None)
        if reason is not None:
            _end(staff_session, reason.value, now)
            record("session.timeout", actor=SYSTEM, now=now, object_type="staff_session",
                   object_id=staff_session.id, details={"limit": reason.value, "user_id": user.id})
    return len(rows)


def forget_submission_keys():
    """Delete the submission keys of ended sessions (the sweep): no form of theirs can be sent again."""
    ended = select(StaffSession.id).where(StaffSession.id == Submission.staff_session_id,
                                          StaffSession.ended_at.is_not(None))
    return db.session.execute(delete(Submission).where(ended.exists())).rowcount


def _check_password(password, username):
    problems = new_password_problems(password, username)
    if problems:
        raise AccountError(" ".join(problems), field="password")


def create_staff(*, username, full_name, role, password, actor, now, credentials="", must_change=False):
    """Create a staff account; the password must pass the password rules."""
    username = username.strip().lower()
    if find_user(username) is not None:
        raise AccountError("That username is already taken.", field="username")
    role = Role(role).value
    _check_password(password, username)
    user = StaffUser(username=username, full_name=full_name.strip(), credentials=credentials.strip(),
                     role=role, password_hash=hash_password(password), is_active_account=True,
                     must_change_password=must_change, failed_login_count=0,
                     password_changed_at=now, created_at=now)
    db.session.add(user)
    db.session.flush()
    record("staff.created", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"username": username, "role": role})
    return user


def change_own_password(user, *, current, new, token, actor, now):
    """A staff member changes their own password; their other sessions end."""
    if not verify_password(user.password_hash, current):
        record("password.change_failed", actor=actor, now=now, outcome="denied",
               object_type="staff_user", object_id=user.id)
        raise AccountError("The current password is not correct.", field="current_password", audited=True)
    if verify_password(user.password_hash, new):
        raise AccountError("Choose a password different from the current one.", field="password")
    _check_password(new, user.username)
    user.password_hash, user.password_changed_at, user.must_change_password = hash_password(new), now, False
    ended = end_user_sessions(user, reason="password_changed", now=now, keep_token=token)
    end_feed_addresses(user, "password_changed", actor=actor, now=now)
    record("password.changed", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"other_sessions_ended": ended})


def reset_password(target, *, new, actor, now):
    """An admin sets a temporary password; the user must change it at next login."""
    _check_password(new, target.username)
    target.password_hash, target.password_changed_at = hash_password(new), now
    target.must_change_password, target.failed_login_count, target.locked_until = True, 0, None
    end_user_sessions(target, reason="password_reset", now=now)
    end_feed_addresses(target, "password_reset", actor=actor, now=now)
    record("password.reset", actor=actor, now=now, object_type="staff_user", object_id=target.id)


def change_role(target, *, role, actor, now):
    old, new = target.role, Role(role).value
    if old == new:
        return
    target.role = new
    end_feed_addresses(target, "role_changed", actor=actor, now=now)
    record("staff.role_changed", actor=actor, now=now, object_type="staff_user", object_id=target.id,
           details={"from": old, "to": new})


def deactivate(target, *, actor, now):
    """Deactivate an account and end all its sessions at once."""
    if not target.is_active_account:
        return
    target.is_active_account, target.deactivated_at = False, now
    ended = end_user_sessions(target, reason="deactivated", now=now)
    end_feed_addresses(target, "deactivated", actor=actor, now=now)
    record("staff.deactivated", actor=actor, now=now, object_type="staff_user", object_id=target.id,
           details={"sessions_ended": ended})


def reactivate(target, *, actor, now):
    if target.is_active_account:
        return
    target.is_active_account, target.deactivated_at = True, None
    target.failed_login_count, target.locked_until = 0, None
    record("staff.reactivated", actor=actor, now=now, object_type="staff_user", object_id=target.id)


def end_sessions_by_admin(target, *, actor, now):
    ended = end_user_sessions(target, reason="ended_by_admin", now=now)
    end_feed_addresses(target, "ended_by_admin", actor=actor, now=now)
    record("staff.sessions_ended", actor=actor, now=now, object_type="staff_user", object_id=target.id,
           details={"sessions_ended": ended})
    return ended
