"""The scale data set's calendar (opsmgr/demo/scale_plan.py): a pure plan, checked without a database."""
import random
from collections import Counter
from datetime import date

import pytest

from opsmgr.demo.scale_plan import LONG_TERM_BOOSTERS, LONG_TERM_EVERY, SLOTS, plan_clinic

TODAY = date(2026, 12, 4)
MONDAY_TO_FRIDAY = frozenset(range(5))


@pytest.mark.parametrize("patients", [20, 200, 450])
def test_no_chair_is_double_booked_no_patient_comes_twice_a_day_and_long_term_patients_reach_50_sessions(patients):
    chairs, planned = plan_clinic(patients, today=TODAY, open_days=MONDAY_TO_FRIDAY,
                                  closed_days=frozenset({date(2026, 11, 26)}), rng=random.Random(7))
    assert len(planned) == patients
    booked = Counter()
    for patient in planned:
        days = [day for series in patient.series for day, _, _ in series.visits]
        assert len(days) == len(set(days)), f"patient {patient.number} has two sessions on one day"
        assert days == sorted(days), f"patient {patient.number}'s sessions are out of order"
        for series in patient.series:
            for day, slot, chair in series.visits:
                assert day.weekday() in MONDAY_TO_FRIDAY and day != date(2026, 11, 26)
                assert 0 <= slot < len(SLOTS) and 0 <= chair < chairs
                booked[(day, slot, chair)] += 1
    assert max(booked.values()) == 1, "a chair holds two sessions in one slot"

    long_term = [p for p in planned if (p.number - 1) % LONG_TERM_EVERY == 0]
    assert len(long_term) == -(-patients // LONG_TERM_EVERY)
    for patient in long_term:
        sessions = sum(len(series.visits) for series in patient.series)
        assert sessions == 6 + LONG_TERM_BOOSTERS == 50
    others = [sum(len(s.visits) for s in p.series) for p in planned if p not in long_term]
    assert max(others) < 50, "only the long-term patients have 50 sessions"
