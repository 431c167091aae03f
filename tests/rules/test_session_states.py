"""The infusion session's state machine, table-first: every legal step allowed, illegal ones refused
with a message, reasons where they are needed. No app needed."""
import pytest

from opsmgr.rules.session_states import (
    ACTIVE_STATES,
    LABELS,
    MOVABLE_STATES,
    NEXT_ACTION,
    REASON_REQUIRED,
    TRANSITIONS,
    SessionState,
    transition_problem,
)

S = SessionState
LEGAL = [
    (S.SCHEDULED, S.CHECKED_IN),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.NO_SHOW),
    (S.CHECKED_IN, S.CHECKLIST),
    (S.CHECKED_IN, S.CANCELLED),
    (S.CHECKLIST, S.CLEARED),
    (S.CHECKLIST, S.CANCELLED),
    (S.CLEARED, S.INFUSING),
    (S.CLEARED, S.CANCELLED),
    (S.INFUSING, S.RECOVERY),
    (S.RECOVERY, S.DISCHARGED),
]
ILLEGAL = [
    (S.SCHEDULED, S.INFUSING),       # skips check-in, checklist and clearance
    (S.SCHEDULED, S.CLEARED),
    (S.SCHEDULED, S.DISCHARGED),
    (S.SCHEDULED, S.SCHEDULED),
    (S.CHECKED_IN, S.SCHEDULED),     # no going back
    (S.CHECKED_IN, S.NO_SHOW),       # they came
    (S.CHECKLIST, S.INFUSING),
    (S.CLEARED, S.RECOVERY),
    (S.INFUSING, S.CANCELLED),       # the dose has started
    (S.INFUSING, S.DISCHARGED),      # recovery first
    (S.RECOVERY, S.CANCELLED),
    (S.CANCELLED, S.SCHEDULED),
    (S.NO_SHOW, S.CHECKED_IN),
    *[(S.DISCHARGED, target) for target in SessionState],
]
REASON = "Patient unwell, rebooked"


def test_legal_table_is_the_whole_transition_map():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == set(LEGAL)


@pytest.mark.parametrize("current,target", LEGAL)
def test_every_legal_transition_is_allowed(current, target):
    assert transition_problem(current, target, reason=REASON) is None


@pytest.mark.parametrize("current,target", [(a, b) for a, b in LEGAL if b not in REASON_REQUIRED])
def test_forward_steps_need_no_reason(current, target):
    assert transition_problem(current, target) is None


@pytest.mark.parametrize("current,target", ILLEGAL)
def test_illegal_transition_is_refused_with_a_message(current, target):
    problem = transition_problem(current, target, reason=REASON)
    assert problem is not None
    assert current.label.lower() in problem and target.label.lower() in problem
    assert "it can become" in problem


@pytest.mark.parametrize("current,target", [
    (a, b) for a in SessionState for b in SessionState if (a, b) not in LEGAL
])
def test_every_transition_outside_the_map_is_refused(current, target):
    assert transition_problem(current, target, reason=REASON) is not None


def test_refusal_lists_what_is_allowed():
    problem = transition_problem(S.SCHEDULED, S.INFUSING)
    assert "Checked in" in problem and "Cancelled" in problem and "No-show" in problem


@pytest.mark.parametrize("final", [S.DISCHARGED, S.CANCELLED, S.NO_SHOW])
def test_final_states_say_they_are_final(final):
    assert "final" in transition_problem(final, S.SCHEDULED)
    assert TRANSITIONS[final] == frozenset()


@pytest.mark.parametrize("current,target", [(a, b) for a, b in LEGAL if b in REASON_REQUIRED])
@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_cancel_and_no_show_need_a_reason(current, target, reason):
    problem = transition_problem(current, target, reason)
    assert problem is not None and "reason" in problem


def test_reason_required_for_cancelled_and_no_show_only():
    assert {S.CANCELLED, S.NO_SHOW} == REASON_REQUIRED


def test_active_states_hold_the_chair_except_cancelled_and_no_show():
    assert set(SessionState) - {S.CANCELLED, S.NO_SHOW} == ACTIVE_STATES
    assert S.DISCHARGED in ACTIVE_STATES


def test_only_scheduled_sessions_can_be_moved():
    assert {S.SCHEDULED} == MOVABLE_STATES


@pytest.mark.parametrize("state", list(SessionState))
def test_every_state_has_a_label_a_next_action_and_a_transition_entry(state):
    assert state.label and state.label == LABELS[state]
    assert NEXT_ACTION[state]
    assert state in TRANSITIONS


def test_labels_are_distinct():
    assert len(set(LABELS.values())) == len(SessionState)


def test_every_state_is_reachable_from_scheduled():
    seen, frontier = {S.SCHEDULED}, [S.SCHEDULED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(SessionState)


def test_values_fit_the_status_column():
    assert all(len(state.value) <= 12 for state in SessionState)


@pytest.mark.parametrize("state", list(SessionState))
def test_every_state_has_a_button_verb_distinct_from_its_label(state):
    assert state.verb and state.verb != state.label
