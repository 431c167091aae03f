"""Access rules, table-first: just inside, on, and just outside every threshold. No app needed."""
from datetime import UTC, datetime, timedelta

import pytest

from opsmgr.rules.access import (
    AccessPolicy,
    SessionEnd,
    is_lock_due,
    is_locked,
    lock_after_failure,
    password_problems,
    pin_problems,
    session_end_reason,
)

POLICY = AccessPolicy()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
COMMON = frozenset({"password1234", "qwerty123456"})


def problems(password, username="nurse1"):
    return password_problems(password, username=username, common_passwords=COMMON, policy=POLICY)


@pytest.mark.parametrize("password,ok", [
    ("a" * 3 + "bcdefgh", False),          # 10 characters
    ("abcd efgh ij", True),                # 12 characters: on the threshold
    ("abcd efgh i", False),                # 11 characters: just outside
    ("abcd efgh ijk", True),               # 13 characters: inside
    ("ü" * 3 + "ßøñ✓ SpO₂ ok", True),      # non-ASCII counts by character
    ("wxyz7" * 204 + "wxyz", True),        # 1024 characters: the maximum
    ("wxyz7" * 205, False),                # 1025
    ("password1234", False),               # on the common list
    ("PASSWORD1234", False),               # case does not matter
    ("nurse1nurse1", True),
    ("Nurse1", False),
    ("zzzzzzzzzzzzzzzz", False),           # repetitive
    ("abababababab", False),               # two distinct characters
    ("abcabcabcabc", False),               # three
    ("abcdefghijkl", False),               # alphabet run
    ("abdcabdcabdc", True),                # four distinct, not a run
    ("123456789012", False),               # counting run
    ("210987654321", False),               # reversed run
    ("qwertyuiopas", False),               # keyboard row
])
def test_password_rules(password, ok):
    assert (problems(password) == ()) is ok, problems(password)


def test_password_equal_to_username_is_refused():
    assert any("username" in p for p in problems("clinic.nurse.01", username="Clinic.Nurse.01"))


@pytest.mark.parametrize("offset,locked", [(-SECOND, True), (timedelta(0), False), (SECOND, False)])
def test_lock_ends_exactly_at_locked_until(offset, locked):
    until = NOW + timedelta(minutes=15)
    assert is_locked(until, until + offset) is locked


def test_no_lock_recorded_means_not_locked():
    assert is_locked(None, NOW) is False


@pytest.mark.parametrize("failures,expected", [
    (4, None),
    (5, NOW + timedelta(minutes=15)),
    (6, NOW + timedelta(minutes=15)),
])
def test_lock_after_five_failures_for_fifteen_minutes(failures, expected):
    assert lock_after_failure(failures, NOW, POLICY) == expected


@pytest.mark.parametrize("idle,expected", [
    (timedelta(minutes=15) - SECOND, None),
    (timedelta(minutes=15), None),
    (timedelta(minutes=15) + SECOND, SessionEnd.IDLE),
])
def test_idle_limit(idle, expected):
    assert session_end_reason(NOW - idle, NOW - idle, NOW, POLICY) == expected


@pytest.mark.parametrize("age,expected", [
    (timedelta(hours=12) - SECOND, None),
    (timedelta(hours=12), None),
    (timedelta(hours=12) + SECOND, SessionEnd.ABSOLUTE),
])
def test_absolute_limit_applies_even_when_active(age, expected):
    assert session_end_reason(NOW - age, NOW - SECOND, NOW, POLICY) == expected


def test_absolute_limit_wins_over_idle():
    long_ago = NOW - timedelta(hours=13)
    assert session_end_reason(long_ago, long_ago, NOW, POLICY) == SessionEnd.ABSOLUTE


def test_policy_values_are_configurable():
    strict = AccessPolicy(idle_timeout=timedelta(minutes=5), lockout_threshold=3)
    assert session_end_reason(NOW - timedelta(minutes=6), NOW - timedelta(minutes=6), NOW, strict) == SessionEnd.IDLE
    assert lock_after_failure(3, NOW, strict) is not None


@pytest.mark.parametrize("idle,locks", [(timedelta(minutes=5), False), (timedelta(minutes=5) + SECOND, True)])
def test_a_tablet_locks_one_instant_after_its_lock_time_and_only_the_absolute_limit_ends_it(idle, locks):
    assert is_lock_due(NOW - idle, NOW, POLICY) is locks
    hours_idle = NOW - timedelta(hours=3)
    assert session_end_reason(hours_idle, hours_idle, NOW, POLICY, on_tablet=True) is None
    assert session_end_reason(NOW - timedelta(hours=13), NOW, NOW, POLICY, on_tablet=True) == SessionEnd.ABSOLUTE


@pytest.mark.parametrize("pin,ok", [
    ("2580", True), ("90210417", True), ("258", False), ("123456789", False), ("25a0", False), ("２５８０", False),
    ("7777", False), ("1234", False), ("4321", False), ("7890", False), ("", False),
])
def test_a_pin_is_4_to_8_digits_and_not_a_repeat_or_a_counting_run(pin, ok):
    assert (pin_problems(pin) == ()) is ok
