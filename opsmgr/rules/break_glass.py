"""Break-glass (HIPAA 164.312(a)(2)(ii), ONC 170.315(d)(6); OpenEMR's emergency access): who may, why, how long."""
from datetime import datetime, timedelta

#: Why a clinician outside the care team opens a restricted record (code -> words).
REASONS = {
    "emergency": "Emergency care",
    "at_chair": "The patient is at the chair",
    "covering": "Covering for the care team",
    "other": "Other",
}
#: Roles that may break the glass: clinicians. Coordinators and admins are added to the care team instead.
BREAK_GLASS_ROLES = frozenset({"nurse", "physician"})
#: The reason must say something: a few words at least, never just "x".
MIN_DETAIL_LENGTH = 5


def may_break_glass(role: str) -> bool:
    return role in BREAK_GLASS_ROLES


def expires_at(started_at: datetime, duration: timedelta) -> datetime:
    return started_at + duration


def is_open(expires: datetime, now: datetime) -> bool:
    """Access lasts up to and including `expires` and ends one instant after it."""
    return now <= expires


def reason_problems(reason: str, detail: str) -> tuple[tuple[str, str], ...]:
    """(field, message) for each missing part of a break-glass reason."""
    problems = []
    if reason not in REASONS:
        problems.append(("reason", "Choose why you need this record."))
    if len((detail or "").strip()) < MIN_DETAIL_LENGTH:
        problems.append(("detail", f"Say in a few words why (at least {MIN_DETAIL_LENGTH} characters)."))
    return tuple(problems)
