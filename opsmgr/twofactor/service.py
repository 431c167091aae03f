"""Two-factor use cases: enrol, confirm, check a code at sign-in and at signing, recovery codes,
an admin's reset, the policy per role. Each function flushes; the caller commits.

A code is accepted in its own 30-second step or one step either side (RFC 6238 §5.2), and only for a
step later than the last one accepted, so each code works once. Wrong codes count toward the same
lockout as wrong passwords and are refused with the same message.
"""
import hashlib
import hmac
import secrets
from datetime import timedelta

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from opsmgr.audit.service import record
from opsmgr.auth import service as auth
from opsmgr.auth.models import Role, StaffUser
from opsmgr.auth.passwords import access_policy, spend_verify_time
from opsmgr.core.guard import TWO_FACTOR_MUST_ENROL, TWO_FACTOR_PENDING
from opsmgr.extensions import db
from opsmgr.feeds.service import end_feed_addresses
from opsmgr.rules.access import is_address_over_limit, is_locked, throttle_address
from opsmgr.twofactor import secrets as sealed
from opsmgr.twofactor.models import RecoveryCode, TwoFactor, TwoFactorPolicy

STEP_SECONDS = 30
#: Steps either side of now that are still accepted (clock drift on the phone).
WINDOW_STEPS = 1
RECOVERY_CODE_COUNT = 10
#: How long the half-signed-in state (password right, code not yet given) lasts.
PENDING_LIFETIME = timedelta(minutes=5)
ISSUER = "opsmgr"
PENDING, MUST_ENROL = TWO_FACTOR_PENDING, TWO_FACTOR_MUST_ENROL  # the session keys (core.guard)
#: A signing step's refusal of a wrong or replayed code: it says no more than a wrong password would.
SIGNING_REFUSED = "The password or the code from your authenticator app is not correct."
WRONG_CODE = "That code is not correct. Enter the current code from your authenticator app."
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off paper without doubt


class TwoFactorError(auth.AccountError):
    """A refused two-factor step, with the message to show next to the field."""


# --- state and policy ------------------------------------------------------------------------------

def row_of(user_id):
    return db.session.get(TwoFactor, user_id)


def is_on(user_id):
    """Whether this staff member signs in (and signs) with a code."""
    return db.session.scalar(select(TwoFactor.confirmed_at).where(TwoFactor.user_id == user_id)) is not None


def required_roles():
    """The roles that must use two factors: the admin's policy rows, else the configured default."""
    default = current_app.config["TWO_FACTOR_REQUIRED_ROLES"]
    rows = dict(db.session.execute(select(TwoFactorPolicy.role, TwoFactorPolicy.is_required)).all())
    return frozenset(role.value for role in Role if rows.get(role.value, role.value in default))


def is_required(role):
    return role in required_roles()


def set_policy(required, *, actor, now):
    """An admin sets which roles must use two factors (audited with before and after)."""
    before, after = required_roles(), frozenset(Role(role).value for role in required)
    if before == after:
        return False
    for role in Role:
        row = db.session.get(TwoFactorPolicy, role.value) or TwoFactorPolicy(role=role.value)
        row.is_required, row.changed_at, row.changed_by_id = role.value in after, now, actor.user_id
        db.session.add(row)
    db.session.flush()
    record("two_factor.policy_changed", actor=actor, now=now, object_type="two_factor_policy",
           details={"from": sorted(before), "to": sorted(after)})
    return True


# --- enrolment -------------------------------------------------------------------------------------

def start_enrolment(user, *, actor, now):
    """A new secret, not yet confirmed: two-factor stays off until one code from the app is entered."""
    if is_on(user.id):
        raise TwoFactorError("Two-factor sign-in is already on for you.", "code")
    row = row_of(user.id) or TwoFactor(user_id=user.id)
    row.secret_encrypted, row.created_at, row.confirmed_at = sealed.seal(pyotp.random_base32()), now, None
    db.session.add(row)
    db.session.flush()
    record("two_factor.enrolment_started", actor=actor, now=now, object_type="staff_user", object_id=user.id)


def pending_secret(user_id):
    """The unconfirmed enrolment's secret (shown for typing into the app), or None."""
    row = row_of(user_id)
    if row is None or row.confirmed_at is not None or row.secret_encrypted is None:
        return None
    return sealed.unseal(row.secret_encrypted)


def qr_data_uri(user, secret):
    """The otpauth:// URI as a QR code, drawn here as an SVG data: URI (the CSP allows img-src data:)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def confirm_enrolment(user, code, *, actor, now):
    """Turn two-factor on with one correct code; returns the ten recovery codes (shown once, stored hashed)."""
    secret = pending_secret(user.id)
    if secret is None:
        raise TwoFactorError("Start the set-up again: there is no code to confirm.", "code")
    step = _matching_step(secret, code, now)
    if step is None or not _claim_step(user.id, step):
        record("two_factor.enrolment_failed", actor=actor, now=now, outcome="denied",
               object_type="staff_user", object_id=user.id)
        raise TwoFactorError(WRONG_CODE, "code", audited=True)
    row = row_of(user.id)
    row.confirmed_at, row.reset_at = now, None
    codes = _new_recovery_codes(user.id, now)
    record("two_factor.enabled", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"recovery_codes": len(codes)})
    return codes


def _new_recovery_codes(user_id, now):
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(code), created_at=now) for code in codes)
    db.session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def recovery_codes_left(user_id):
    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))


# --- codes -----------------------------------------------------------------------------------------

def _normal(code):
    return "".join((code or "").split()).replace("-", "").upper()


def _recovery_hash(normal):
    # 50 random bits per code and single use: SHA-256 is enough (no password-hash cost needed).
    return hashlib.sha256(normal.encode()).hexdigest()


def _matching_step(secret, code, now):
    """The time step (±WINDOW_STEPS around now) whose code this is, or None."""
    code = _normal(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp, current = pyotp.TOTP(secret), int(now.timestamp()) // STEP_SECONDS
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _claim_step(user_id, step):
    """Record `step` as used, atomically, unless it or a later one already was (a replay)."""
    claimed = db.session.execute(update(TwoFactor).where(
        TwoFactor.user_id == user_id, or_(TwoFactor.last_used_step.is_(None), TwoFactor.last_used_step < step))
        .values(last_used_step=step)).rowcount
    db.session.flush()
    return claimed == 1


def _accept_app_code(user_id, code, now):
    row = row_of(user_id)
    secret = row and row.confirmed_at and row.secret_encrypted and sealed.unseal(row.secret_encrypted)
    step = _matching_step(secret, code, now) if secret else None
    return step is not None and _claim_step(user_id, step)


def _spend_recovery_code(user, code, actor, now):
    normal = _normal(code)
    if len(normal) != 10:
        return False
    used = db.session.execute(update(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_hash(normal),
        RecoveryCode.used_at.is_(None)).values(used_at=now)).rowcount
    db.session.flush()
    if used:
        record("two_factor.recovery_code_used", actor=actor, now=now, object_type="staff_user", object_id=user.id,
               details={"left": recovery_codes_left(user.id)})
    return used == 1


def complete_sign_in(user_id, code, *, ip, now, tablet=None):
    """The second step of a sign-in whose password was right: a code from the app or a recovery code
    opens the session (returns auth.LoginResult). A wrong code counts toward the account's lockout and
    the client address's limit, like a wrong password."""
    address = throttle_address(ip)
    if is_address_over_limit(auth._recent_address_failures(address, now, access_policy()), access_policy()):
        spend_verify_time()
        return auth.LoginResult(None, None)
    user = db.session.scalar(select(StaffUser).where(StaffUser.id == user_id)
                             .with_for_update(key_share=True))  # FOR NO KEY UPDATE: see auth.service.authenticate
    if user is None or not user.is_active_account or is_locked(user.locked_until, now) or not is_on(user.id):
        if user is not None:
            record("login.failed", actor=auth.actor_for(user, ip), now=now, outcome="denied",
                   details={"reason": "locked_or_inactive", "step": "code"})
        return auth._failed(address, now)
    actor = auth.actor_for(user, ip)
    how = "app" if _accept_app_code(user.id, code, now) else (
        "recovery_code" if _spend_recovery_code(user, code, actor, now) else None)
    if how is None:
        auth._count_failure(user, actor, now, "login.failed", reason="wrong_code")
        return auth._failed(address, now)
    user.failed_login_count = 0
    token = auth.start_session(user, ip=ip, now=now, tablet=tablet)
    record("login.succeeded", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"second_factor": how, **({"tablet_id": tablet.id} if tablet is not None else {})})
    return auth.LoginResult(user, token)


def check_signing_code(user, code, *, ip, now, purpose):
    """At a signing step (a note, an override, a series summary): True when the signer has two-factor
    off, or gave a fresh code from the app; a wrong or replayed code counts toward the lockout."""
    if not is_on(user.id):
        return True
    if _accept_app_code(user.id, code, now):
        return True
    auth._count_failure(user, auth.actor_for(user, ip), now, "reauth.failed", purpose=purpose, reason="wrong_code")
    return False


# --- turning it off ----------------------------------------------------------------------------------

def _turn_off(user_id):
    row = row_of(user_id)
    if row is not None:
        row.secret_encrypted, row.confirmed_at = None, None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.session.flush()
    return row


def reset_by_admin(target, *, actor, now):
    """An admin clears a colleague's second factor (a lost phone): their sessions and feed addresses
    end, and they are told at their next sign-in. Nobody resets their own here."""
    if target.id == actor.user_id:
        raise TwoFactorError("You cannot reset your own second factor: use one of your recovery codes "
                             "on your two-factor page.")
    row = _turn_off(target.id)
    if row is not None:
        row.reset_at = now
    ended = auth.end_user_sessions(target, reason="two_factor_reset", now=now)
    end_feed_addresses(target, "two_factor_reset", actor=actor, now=now)
    record("two_factor.reset", actor=actor, now=now, object_type="staff_user", object_id=target.id,
           details={"sessions_ended": ended})


def turn_off_with_recovery_code(user, *, password, code, token, actor, now):
    """Someone who lost their phone turns their own two-factor off with their password and a recovery
    code; their other sessions and feed addresses end."""
    if not auth.reauthenticate(user, password, ip=actor.ip, now=now, purpose="two_factor.off"):
        raise TwoFactorError("That password is not correct.", "password", audited=True)
    if not is_on(user.id) or not _spend_recovery_code(user, code, actor, now):
        auth._count_failure(user, actor, now, "reauth.failed", purpose="two_factor.off", reason="wrong_code")
        raise TwoFactorError("That recovery code is not correct or was already used.", "code", audited=True)
    _turn_off(user.id)
    ended = auth.end_user_sessions(user, reason="two_factor_reset", now=now, keep_token=token)
    end_feed_addresses(user, "two_factor_reset", actor=actor, now=now)
    record("two_factor.disabled", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"other_sessions_ended": ended})


def renew_recovery_codes(user, *, password, code, actor, now):
    """Ten new recovery codes in place of every old one (used or not), for someone with two-factor on who
    gives their password and a current code from their app: the way back when the codes page was lost (a
    second click, Back, a closed tab) or the paper was. Returns the codes (shown once, stored hashed)."""
    if not auth.reauthenticate(user, password, ip=actor.ip, now=now, purpose="two_factor.recovery_codes"):
        raise TwoFactorError("That password is not correct.", "password", audited=True)
    if not is_on(user.id):
        raise TwoFactorError("Two-factor sign-in is not on: there are no recovery codes to replace.", "code")
    if not check_signing_code(user, code, ip=actor.ip, now=now, purpose="two_factor.recovery_codes"):
        raise TwoFactorError(f"{WRONG_CODE} A code works once: if you just made new codes and did not see them, "
                             "wait for the next code and make them again.", "code", audited=True)
    codes = _new_recovery_codes(user.id, now)
    record("two_factor.recovery_codes_renewed", actor=actor, now=now, object_type="staff_user", object_id=user.id,
           details={"recovery_codes": len(codes)})
    return codes


def take_reset_notice(user_id):
    """When an admin reset this person's second factor since they last signed in (then forgotten), or None."""
    row = row_of(user_id)
    if row is None or row.reset_at is None:
        return None
    reset_at, row.reset_at = row.reset_at, None
    db.session.flush()
    return reset_at
