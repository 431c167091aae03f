"""When a series summary may be signed (opsmgr.rules.reports): every session that took place finished and
signed, a summary of the same sessions signed once, and the physician's paragraph. No app, no database."""
import pytest

from opsmgr.rules.reports import (
    SUMMARY_MAX_CHARACTERS,
    SUMMARY_MIN_CHARACTERS,
    SeriesSessionFact,
    covered,
    signing_problems,
    summary_problems,
)


def fact(number, status="discharged", signed=True):
    return SeriesSessionFact(number, status, f"{number} Nov 2026", signed)


# fmt: off
@pytest.mark.parametrize(("sessions", "signed_counts", "expected"), [
    ([fact(1), fact(2)],                                   (),     []),
    ([fact(1), fact(2), fact(3, "scheduled", False)],      (),     []),          # future: not covered
    ([fact(1), fact(2, "cancelled", False), fact(3, "no_show", False)], (), []),  # did not take place
    ([fact(1), fact(2, signed=False)],                     (),     ["Session 2 (2 Nov 2026): its note is not signed"]),
    ([fact(1), fact(2, "recovery", False)],                (),     ["Session 2 (2 Nov 2026) is still in progress"]),
    ([fact(1, "checked_in", False)],                       (),     ["Session 1 (1 Nov 2026) is still in progress"]),
    ([fact(1, "scheduled", False)],                        (),     ["No session of this series has taken place"]),
    ([],                                                   (),     ["No session of this series has taken place"]),
    ([fact(1), fact(2)],                                   (2,),   ["A summary of these 2 sessions is already signed"]),
    ([fact(1), fact(2), fact(3)],                          (2,),   []),          # a booster since: a new summary
    ([fact(1), fact(2, signed=False)],                     (1,),   ["Session 2 (2 Nov 2026): its note is not signed"]),
])
# fmt: on
def test_signing_needs_every_session_that_took_place_finished_and_signed(sessions, signed_counts, expected):
    problems = signing_problems(sessions, signed_counts=signed_counts)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.message.startswith(start) and problem.field is None


def test_every_unsigned_session_is_named_in_series_order():
    problems = signing_problems([fact(3, signed=False), fact(1, signed=False), fact(2)])
    assert [problem.message[:9] for problem in problems] == ["Session 1", "Session 3"]


def test_covered_sessions_are_those_that_took_place_in_order():
    assert [f.number for f in covered([fact(3), fact(1), fact(2, "cancelled"), fact(4, "scheduled")])] == [1, 3]


@pytest.mark.parametrize(("length", "ok"), [
    (SUMMARY_MIN_CHARACTERS - 1, False), (SUMMARY_MIN_CHARACTERS, True),
    (SUMMARY_MAX_CHARACTERS, True), (SUMMARY_MAX_CHARACTERS + 1, False),
])
def test_the_summary_paragraph_has_a_floor_and_a_ceiling(length, ok):
    problems = summary_problems("  " + "x" * length + "\n")
    assert (problems == []) is ok
    assert all(problem.field == "summary" for problem in problems)


def test_a_missing_summary_is_a_problem():
    assert summary_problems(None)[0].message.startswith("Write the summary paragraph")
