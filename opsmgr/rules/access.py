"""Rules for staff access: password acceptability, lockout and session lifetime.

Sources: OWASP ASVS 5.0 6.2.1/6.2.4/6.2.5/6.2.9 (length, common passwords, no composition
rules, long passwords), ASVS v4.0.3 2.2.1 (brute-force limits), 45 CFR 164.312(a)(2)(iii)
and ASVS 7.3.1/7.3.2 (idle and absolute session limits; NIST SP 800-63B AAL2: 12 h maximum).
"""
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class AccessPolicy:
    """Defaults: 12-character minimum, 5 failures lock for 15 minutes, 15-minute idle, 12-hour absolute."""

    password_min_length: int = 12
    password_max_length: int = 1024
    lockout_threshold: int = 5
    lockout_duration: timedelta = timedelta(minutes=15)
    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=12)
    #: On an enrolled chair tablet idle locks the screen instead of ending the session.
    tablet_lock_timeout: timedelta = timedelta(minutes=5)
    #: Wrong PINs at a locked screen before the session ends and a full sign-in is needed.
    pin_attempts: int = 5
    #: Failed sign-ins one client address may make in `address_window` before it is refused unheard.
    address_failure_limit: int = 20
    address_window: timedelta = timedelta(minutes=15)


#: Keyboard and counting runs; a password inside one (or its reverse) is sequential (NIST SP 800-63B 3.1.1.2).
SEQUENCES = (
    "01234567890123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
MIN_DISTINCT_CHARACTERS = 4


class SessionEnd(StrEnum):
    IDLE = "idle"
    ABSOLUTE = "absolute"


def password_problems(password, *, username, common_passwords, policy):
    """Why a proposed password is refused, as plain messages; empty when it is acceptable.

    Refused: too short, on the common list, the username, repetitive or sequential
    (NIST SP 800-63B 3.1.1.2 asks for a blocklist including "repetitive or sequential characters").

    No composition rules (ASVS 6.2.5); length is counted in characters, so long and
    non-ASCII passwords are accepted whole (ASVS 6.2.8, 6.2.9).
    """
    problems = []
    if len(password) < policy.password_min_length:
        problems.append(f"Use at least {policy.password_min_length} characters.")
    if len(password) > policy.password_max_length:
        problems.append(f"Use at most {policy.password_max_length} characters.")
    folded = password.strip().lower()
    if folded in common_passwords:
        problems.append("This password is on the list of commonly used passwords; choose another.")
    if username and folded == username.strip().lower():
        problems.append("The password must not be your username.")
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        problems.append("The password repeats too few different characters.")
    elif any(folded in run or folded[::-1] in run for run in SEQUENCES):
        problems.append("The password is a keyboard or counting sequence.")
    return tuple(problems)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    """An account is locked while its lock has not run out (the lock ends exactly at locked_until)."""
    return locked_until is not None and now < locked_until


def lock_after_failure(failed_count: int, now: datetime, policy: AccessPolicy) -> datetime | None:
    """The lock's end time once `failed_count` consecutive failures reach the threshold, else None."""
    if failed_count >= policy.lockout_threshold:
        return now + policy.lockout_duration
    return None


def throttle_address(address: str | None) -> str:
    """The client a sign-in failure is counted against: an IPv4 address as it is, an IPv6 address by
    its /64 network (one subscriber gets a whole /64, so counting single addresses would count nothing)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def is_address_over_limit(recent_failures: int, policy: AccessPolicy) -> bool:
    """A client address with this many failed sign-ins inside the window is refused before any check
    (ASVS v4 2.2.1 / 5.0 6.3.1), and its refusals count toward no account's lockout (ASVS 6.1.1)."""
    return recent_failures >= policy.address_failure_limit


def session_end_reason(
    created_at: datetime, last_seen_at: datetime, now: datetime, policy: AccessPolicy, *, on_tablet: bool = False
) -> SessionEnd | None:
    """Why a staff session must end now, or None while it may continue.

    A session is still valid at exactly the limit and ends one instant after it. On an enrolled chair
    tablet idle locks the screen instead (is_lock_due); only the absolute limit ends the session.
    """
    if now - created_at > policy.absolute_timeout:
        return SessionEnd.ABSOLUTE
    if not on_tablet and now - last_seen_at > policy.idle_timeout:
        return SessionEnd.IDLE
    return None


def is_lock_due(last_seen_at: datetime, now: datetime, policy: AccessPolicy) -> bool:
    """A chair tablet's screen locks one instant after its idle limit (OPSMGR_TABLET_LOCK_MINUTES)."""
    return now - last_seen_at > policy.tablet_lock_timeout


PIN_LENGTHS = range(4, 9)


def pin_problems(pin: str) -> tuple[str, ...]:
    """Why a proposed PIN is refused: 4 to 8 digits, not one digit repeated, not a counting run.

    A PIN only resumes a locked screen on an enrolled tablet, for the person already signed in there,
    and five wrong tries end the session: short is enough, but the first guesses must not work.
    """
    if not (pin.isascii() and pin.isdigit() and len(pin) in PIN_LENGTHS):
        return ("Use 4 to 8 digits.",)
    if len(set(pin)) == 1 or pin in SEQUENCES[0] or pin[::-1] in SEQUENCES[0]:
        return ("Choose a PIN that is not one digit repeated or a counting run such as 1234.",)
    return ()
