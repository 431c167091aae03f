"""Entered in error: who may mark an entry wrong, and when a mark is refused.

A reading, a weight, a medication or a contraindication is marked entered in error by the person
who recorded it or by a physician, with a reason; the mark is one-way. A reading belongs to a
session: once the session is signed only an addendum to the note can correct it.
"""
from opsmgr.rules.findings import Problem

#: The longest reason kept (the column's size).
REASON_MAX = 300

SIGNED = ("This session's record is signed, so its readings can no longer be marked entered in error. "
          "Write the correction in an addendum to the note.")
ALREADY = "This entry is already marked entered in error."
NOT_THEIRS = "Only the person who recorded this entry, or a physician, can mark it entered in error."
NO_REASON = "Say why this entry is wrong (for example: typed in the wrong patient's chart)."
TOO_LONG = f"Keep the reason to {REASON_MAX} characters."


def may_mark(*, role, user_id, author_id) -> bool:
    """The entry's author or a physician (an entry without a known author: a physician only)."""
    return role == "physician" or (user_id is not None and user_id == author_id)


def mark_problems(*, reason, role, user_id, author_id, already_marked, signed) -> tuple[Problem, ...]:
    """Why marking this entry entered in error is refused now (empty: it may be marked)."""
    if signed:
        return (Problem(None, SIGNED),)
    if already_marked:
        return (Problem(None, ALREADY),)
    if not may_mark(role=role, user_id=user_id, author_id=author_id):
        return (Problem(None, NOT_THEIRS),)
    text = (reason or "").strip()
    if not text:
        return (Problem("reason", NO_REASON),)
    if len(text) > REASON_MAX:
        return (Problem("reason", TOO_LONG),)
    return ()
