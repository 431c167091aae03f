"""Outcome rules (opsmgr.rules.outcomes): per-series response and remission at and around their
thresholds, a missing score, and rates over empty groups. No app, no database."""
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsmgr.rules.outcomes import Rate, ScoreFact, SessionFact, aggregate, phone_scores_by_series, series_outcome

ZONE = ZoneInfo("America/New_York")
DAY1 = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)


def at(days):
    return DAY1 + timedelta(days=days)


SESSIONS = (SessionFact(1, at(0), "discharged"), SessionFact(2, at(7), "discharged"),
            SessionFact(3, at(14), "discharged"))


def run(baseline, *later):
    """A series with `baseline` at session 1's checklist and the later totals a week apart."""
    scores = [ScoreFact(at(0), baseline, 1)]
    scores += [ScoreFact(at(7 * n), total, n + 1 if n < 3 else None) for n, total in enumerate(later, 1)]
    return series_outcome(SESSIONS, scores, zone=ZONE)


# fmt: off
@pytest.mark.parametrize(("baseline", "later", "response", "remission", "days"), [
    (20, 11,  False, False, None),   # 45 % fall: just outside
    (20, 10,  True,  False, 7),      # exactly 50 %: a response
    (20, 9,   True,  False, 7),      # 55 %: just inside
    (19, 10,  False, False, None),   # 47.4 %: 9.5 would be half, 10 is not
    (19, 9,   True,  False, 7),      # 52.6 %
    (10, 5,   True,  False, 7),      # 50 % yet a total of 5 is not remission
    (10, 4,   True,  True,  7),      # 4: remission (just inside)
    (6, 5,    False, False, None),   # on 5: not remission
    (6, 6,    False, False, None),
    (0, 0,    None,  True,  None),   # a baseline of 0 cannot respond
])
# fmt: on
def test_response_and_remission_at_and_around_their_thresholds(baseline, later, response, remission, days):
    outcome = run(baseline, later)
    assert (outcome.is_response, outcome.is_remission, outcome.days_to_response) == (response, remission, days)


def test_days_to_first_response_counts_clinic_days_to_the_first_responding_score():
    outcome = run(20, 15, 12, 9, 4)
    assert (outcome.is_response, outcome.is_remission, outcome.days_to_response, outcome.later_scores) == \
        (True, True, 21, 4)


def test_a_series_missing_its_baseline_score_has_no_outcome():
    scores = [ScoreFact(at(7), 8, 2), ScoreFact(at(14), 3, 3)]   # the first session's PHQ-9 was never taken
    outcome = series_outcome(SESSIONS, scores, zone=ZONE)
    assert outcome.baseline is None and outcome.is_response is None and not outcome.is_evaluable
    assert outcome.first_dose_at == at(0)


def test_a_baseline_from_a_session_that_did_not_go_ahead_counts_but_not_one_after_the_first_dose():
    sessions = (SessionFact(1, at(0), "cancelled"), SessionFact(2, at(2), "discharged"),
                SessionFact(3, at(9), "discharged"))
    assert series_outcome(sessions, [ScoreFact(at(0), 20, 1), ScoreFact(at(9), 9, 3)], zone=ZONE).days_to_response == 9
    assert series_outcome(sessions, [ScoreFact(at(9), 20, 3), ScoreFact(at(12), 2, None)], zone=ZONE).baseline is None


def test_a_series_never_dosed_and_one_without_later_scores():
    undosed = series_outcome((SessionFact(1, at(0), "scheduled"),), [ScoreFact(at(0), 20, 1)], zone=ZONE)
    assert undosed.first_dose_at is None
    only_baseline = run(20)
    assert only_baseline.baseline == 20 and only_baseline.later_scores == 0 and only_baseline.is_response is None


def test_phone_scores_go_to_the_series_running_when_they_were_taken():
    given = phone_scores_by_series({10: at(0), 11: at(60), 12: None},
                                   [ScoreFact(at(-3), 20), ScoreFact(at(30), 9), ScoreFact(at(61), 4)])
    assert {key: [score.total for score in value] for key, value in given.items()} == {10: [9], 11: [4]}


def test_rates_show_their_counts_and_empty_groups_divide_by_nothing():
    assert [str(Rate(4, 9)), str(Rate(0, 0)), str(Rate(1, 2)), str(Rate(2, 3))] == \
        ["4 of 9 (44 %)", "no series yet", "1 of 2 (50 %)", "2 of 3 (67 %)"]
    assert Rate(0, 0).percent is None


def test_aggregate_by_protocol_and_quarter_with_median_and_adverse_events_per_100():
    rows = [("IV", run(20, 10), 3, 1), ("IV", run(20, 15, 9), 3, 0), ("IV", run(20, 15), 3, 0),
            ("IV", series_outcome(SESSIONS, [], zone=ZONE), 3, 2),
            ("IM", series_outcome((SessionFact(9, at(-90), "discharged"),), [], zone=ZONE), 0, 0)]
    groups = aggregate(rows, zone=ZONE)
    assert [(group.protocol, group.period) for group in groups] == [("IM", "2026 Q3"), ("IV", "2026 Q4")]
    empty, iv = groups
    assert (str(empty.response), str(empty.remission), empty.median_text, empty.adverse_events_text) == \
        ("no series yet", "no series yet", "no response yet", "no sessions yet")
    assert (iv.series, iv.no_baseline, str(iv.response), str(iv.remission)) == (4, 1, "2 of 3 (67 %)", "0 of 3 (0 %)")
    assert iv.median_days_to_response == 10.5 and iv.adverse_events_text == "25 (3 in 12 sessions)"


def test_aggregate_keeps_series_whose_first_dose_is_in_the_period_only():
    rows = [("IV", run(20, 10), 3, 0)]
    assert aggregate(rows, zone=ZONE, start=date(2026, 10, 5), end=date(2026, 10, 5))
    assert aggregate(rows, zone=ZONE, start=date(2026, 10, 6)) == []
    assert aggregate(rows, zone=ZONE, end=date(2026, 10, 4)) == []
