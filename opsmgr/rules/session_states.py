"""The infusion session's state machine, defined once.

scheduled → checked in → checklist → cleared → infusing → recovery → discharged;
a session can be cancelled before the dose starts, and a scheduled one marked no-show.
"""
from enum import StrEnum


class SessionState(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    CHECKLIST = "checklist"
    CLEARED = "cleared"
    INFUSING = "infusing"
    RECOVERY = "recovery"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def label(self):
        return LABELS[self]

    @property
    def verb(self):
        """What a button that moves a session into this state says ("Check in", not "Checked in")."""
        return VERBS[self]


LABELS = {
    SessionState.SCHEDULED: "Scheduled",
    SessionState.CHECKED_IN: "Checked in",
    SessionState.CHECKLIST: "Checklist in progress",
    SessionState.CLEARED: "Cleared to dose",
    SessionState.INFUSING: "Infusing",
    SessionState.RECOVERY: "Recovery",
    SessionState.DISCHARGED: "Discharged",
    SessionState.CANCELLED: "Cancelled",
    SessionState.NO_SHOW: "No-show",
}

VERBS = {
    SessionState.SCHEDULED: "Back to scheduled",
    SessionState.CHECKED_IN: "Check in",
    SessionState.CHECKLIST: "Start checklist",
    SessionState.CLEARED: "Clear to dose",
    SessionState.INFUSING: "Start dose",
    SessionState.RECOVERY: "End infusion",
    SessionState.DISCHARGED: "Discharge",
    SessionState.CANCELLED: "Cancel",
    SessionState.NO_SHOW: "Mark no-show",
}

S = SessionState
TRANSITIONS = {
    S.SCHEDULED: frozenset({S.CHECKED_IN, S.CANCELLED, S.NO_SHOW}),
    S.CHECKED_IN: frozenset({S.CHECKLIST, S.CANCELLED}),
    S.CHECKLIST: frozenset({S.CLEARED, S.CANCELLED}),
    S.CLEARED: frozenset({S.INFUSING, S.CANCELLED}),
    S.INFUSING: frozenset({S.RECOVERY}),
    S.RECOVERY: frozenset({S.DISCHARGED}),
    S.DISCHARGED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_SHOW: frozenset(),
}

#: States that hold a chair (and the patient) for the booked time.
ACTIVE_STATES = frozenset(state for state in SessionState if state not in {S.CANCELLED, S.NO_SHOW})
#: States in which a coordinator may still move the booking.
MOVABLE_STATES = frozenset({S.SCHEDULED})
#: States entered only through their step — the checklist evaluation, the start of the dose, the
#: end of the infusion (which records when it ended), the discharge check — never by a bare status
#: change, so no form or crafted POST can skip a gate.
GATED_STATES = frozenset({S.CLEARED, S.INFUSING, S.RECOVERY, S.DISCHARGED})
#: States that need a reason when entered.
REASON_REQUIRED = frozenset({S.CANCELLED, S.NO_SHOW})

NEXT_ACTION = {
    S.SCHEDULED: "Check in",
    S.CHECKED_IN: "Start checklist",
    S.CHECKLIST: "Complete checklist",
    S.CLEARED: "Start dose",
    S.INFUSING: "Record vitals; end infusion",
    S.RECOVERY: "Discharge when safe",
    S.DISCHARGED: "Write the session note",
    S.CANCELLED: "None",
    S.NO_SHOW: "Follow up with the patient",
}


def transition_problem(current: SessionState, target: SessionState, reason: str = "") -> str | None:
    """Why the move from `current` to `target` is refused, or None when it is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(state.label for state in TRANSITIONS[current])) or "nothing (it is final)"
        return (f"A session that is {current.label.lower()} cannot become {target.label.lower()}; "
                f"it can become: {allowed}.")
    if target in REASON_REQUIRED and not reason.strip():
        return f"Give a reason for marking the session {target.label.lower()}."
    return None
