"""Note rules, table first: what a complete note needs, when it may be signed, when it is late."""
from datetime import UTC, datetime, timedelta

import pytest

from opsmgr.rules.notes import completion_problems, is_late_entry, next_step, signing_problems, unsigned_age
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy
from opsmgr.rules.session_states import NEXT_ACTION, SessionState

ENDED = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
FULL = {"mindset": "Calm", "intention": "Feel better", "dissociation_clinician": 0, "post_session_state": "Steady",
        "narrative": "Uneventful."}


@pytest.mark.parametrize("elapsed,hours,overdue", [
    (timedelta(hours=47, minutes=59), 47, False),   # just inside
    (timedelta(hours=48), 48, False),               # on the threshold: not yet late
    (timedelta(hours=48, seconds=1), 48, True),     # just outside
    (timedelta(hours=73), 73, True),
    (timedelta(minutes=-5), 0, False),              # a session that has not ended yet
])
def test_unsigned_age_and_the_48_hour_flag(elapsed, hours, overdue):
    age = unsigned_age(ENDED, ENDED + elapsed, DEFAULT_POLICY)
    assert (age.hours, age.is_overdue) == (hours, overdue)


def test_the_flag_follows_the_policy():
    policy = ClinicalPolicy(unsigned_note_flag_hours=24)
    assert unsigned_age(ENDED, ENDED + timedelta(hours=24, seconds=1), policy).is_overdue
    assert not unsigned_age(ENDED, ENDED + timedelta(hours=24), policy).is_overdue


@pytest.mark.parametrize("hours,label", [(5, "5 h"), (24, "1 d 0 h"), (50, "2 d 2 h")])
def test_age_labels(hours, label):
    assert unsigned_age(ENDED, ENDED + timedelta(hours=hours), DEFAULT_POLICY).label == label


def test_a_full_note_of_a_discharged_session_can_be_completed():
    assert completion_problems(FULL, session_status="discharged") == ()


BLANKS = [(field, blank) for field in sorted(FULL)
          for blank in ((None,) if field == "dissociation_clinician" else (None, "", "   "))]


@pytest.mark.parametrize("field,blank", BLANKS)
def test_each_required_field_blank_is_a_problem_at_that_field(field, blank):
    problems = completion_problems({**FULL, field: blank}, session_status="discharged")
    assert [problem.field for problem in problems] == [field]


def test_a_rating_of_zero_counts_as_answered():
    assert completion_problems({**FULL, "dissociation_clinician": 0}, session_status="discharged") == ()


@pytest.mark.parametrize("status", ["recovery", "infusing", "cleared", "cancelled"])
def test_only_a_discharged_session_can_have_its_note_completed(status):
    [problem] = completion_problems(FULL, session_status=status)
    assert problem.field is None and "discharged" in problem.message


@pytest.mark.parametrize("status,session_status,expected,version,fields", [
    ("complete", "discharged", 3, 3, []),
    ("draft", "discharged", 3, 3, [None]),
    ("signed", "discharged", 3, 3, [None]),
    ("complete", "recovery", 3, 3, [None]),
    ("complete", "discharged", 2, 3, ["version"]),
    ("complete", "discharged", 4, 3, ["version"]),
])
def test_signing_problems(status, session_status, expected, version, fields):
    problems = signing_problems(status=status, session_status=session_status, expected_version=expected,
                                version=version)
    assert [problem.field for problem in problems] == fields


@pytest.mark.parametrize("event_at,late", [
    (None, False),
    (ENDED - timedelta(seconds=1), True),
    (ENDED, False),
    (ENDED + timedelta(seconds=1), False),
])
def test_late_entries(event_at, late):
    assert is_late_entry(event_at, ENDED) is late


@pytest.mark.parametrize("state,note_status,expected", [
    ("discharged", None, "Write the session note"),
    ("discharged", "draft", "Finish the session note and mark it complete"),
    ("discharged", "complete", "A physician signs the note"),
    ("discharged", "signed", "Nothing: the session record is signed"),
    ("recovery", None, NEXT_ACTION[SessionState.RECOVERY]),
    ("recovery", "draft", NEXT_ACTION[SessionState.RECOVERY]),  # a note drafted early does not skip discharge
])
def test_next_step_of_a_session_follows_its_note_once_discharged(state, note_status, expected):
    assert next_step(state, note_status) == expected
