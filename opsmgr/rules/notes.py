"""Session-note rules: what a note needs before it is complete, and when an unsigned note is late.

Sources (../shared/reference/clinical.md): §5 lists the fields of a session note (set, setting,
experience, adverse events, integration); §7.3 and rules 19-21: documentation is completed as
soon as practicable, only a physician signs, and notes still unsigned 48 hours after the session
show flagged on the physician's worklist (the 48 hours is [INF], a policy setting).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsmgr.rules.findings import Problem
from opsmgr.rules.session_states import NEXT_ACTION, SessionState

#: What a completed note must say: (field, what to write). The rest is optional.
REQUIRED_TO_COMPLETE = (
    ("mindset", "Describe the patient's mindset on arrival."),
    ("intention", "Record the patient's intention in their own words."),
    ("dissociation_clinician", "Rate the dissociation you observed (0–10)."),
    ("post_session_state", "Describe the patient's state after the session."),
    ("narrative", "Write the narrative of the session."),
)
#: Session states in which the chair record is finished, so the note may be completed and signed.
FINISHED_STATES = frozenset({"discharged"})


#: What a discharged session waits for, by the status of its note (None: no note yet).
NEXT_FOR_NOTE = {
    None: "Write the session note",
    "draft": "Finish the session note and mark it complete",
    "complete": "A physician signs the note",
    "signed": "Nothing: the session record is signed",
}


def next_step(state, note_status):
    """What a session waits for: its state's next action, or, once discharged, its note's."""
    state = SessionState(state)
    return NEXT_FOR_NOTE[note_status] if state == SessionState.DISCHARGED else NEXT_ACTION[state]


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def completion_problems(values, *, session_status):
    """Why a note cannot be marked complete yet (an empty tuple when it can).

    ``values`` maps note field names to their saved values.
    """
    problems = []
    if session_status not in FINISHED_STATES:
        problems.append(Problem(None, "The patient has not been discharged yet: complete the note after discharge, "
                                      "so it covers the whole session."))
    problems.extend(Problem(name, message) for name, message in REQUIRED_TO_COMPLETE if _blank(values.get(name)))
    return tuple(problems)


def signing_problems(*, status, session_status, expected_version, version):
    """Why a physician cannot sign this note now (an empty tuple when they can)."""
    problems = []
    if status == "signed":
        problems.append(Problem(None, "This note is already signed. Add an addendum instead."))
    elif status != "complete":
        problems.append(Problem(None, "Only a note marked complete can be signed."))
    if session_status not in FINISHED_STATES:
        problems.append(Problem(None, "The patient has not been discharged yet."))
    if expected_version != version:
        problems.append(Problem("version", "The note changed after you opened it. Read the current text, then sign."))
    return tuple(problems)


@dataclass(frozen=True)
class UnsignedAge:
    hours: int
    is_overdue: bool

    @property
    def label(self):
        days, hours = divmod(self.hours, 24)
        return f"{days} d {hours} h" if days else f"{hours} h"


def unsigned_age(session_ended_at: datetime, now: datetime, policy) -> UnsignedAge:
    """How long since the session ended; overdue once more than the policy's hours have passed.

    On the threshold itself (exactly 48 hours) the note is not yet overdue.
    """
    elapsed = max(now - session_ended_at, timedelta(0))
    return UnsignedAge(hours=int(elapsed.total_seconds() // 3600),
                       is_overdue=elapsed > timedelta(hours=policy.unsigned_note_flag_hours))


def is_late_entry(event_at: datetime | None, written_at: datetime, *, grace: timedelta = timedelta(0)) -> bool:
    """An addendum that describes something that happened before it was written is a late entry."""
    return event_at is not None and event_at + grace < written_at
