"""Booking decisions and series placement, table-first: the past, one infusion per clinic day, the
count allowance, overlapping series, the calendar with closures, and where each session of a series
goes (with why when not as asked). Just inside, on and just outside every edge. No app needed."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsmgr.rules.booking import (
    Placement,
    Search,
    SeriesSpan,
    count_problem,
    overlap_problem,
    past_problem,
    place_session,
    plan_code,
    same_day_problem,
)
from opsmgr.rules.scheduling import ClinicCalendar, hours_problem, next_open_day, phases_from, plan_days

ZONE = "America/New_York"
OPEN_HOURS = (time(8, 0), time(18, 0))
CALENDAR = ClinicCalendar(hours={day: OPEN_HOURS for day in range(5)}, closures={date(2026, 12, 25): "Christmas Day"},
                          zone=ZONE)
TWO_HOURS = timedelta(hours=2)
TURNOVER = timedelta(minutes=15)


def at(day, clock):
    """A clinic-local date and time as an aware UTC datetime."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


NOW = at("2026-11-26", "10:00")  # Thursday


# --- the calendar ---------------------------------------------------------------------------------

@pytest.mark.parametrize("day,open_,reason", [
    ("2026-12-24", True, None),
    ("2026-12-25", False, "The clinic is closed on Fri 25 Dec (Christmas Day)."),
    ("2026-12-26", False, "The clinic is closed on Saturdays."),
    ("2026-12-28", True, None),
])
def test_a_closure_closes_an_open_weekday_with_its_label(day, open_, reason):
    assert CALENDAR.is_open(date.fromisoformat(day)) is open_
    assert CALENDAR.closed_reason(date.fromisoformat(day)) == reason
    assert (CALENDAR.hours_on(date.fromisoformat(day)) is None) is not open_


def test_next_open_day_and_the_plan_skip_closures():
    assert next_open_day(date(2026, 12, 25), frozenset(range(5)), frozenset({date(2026, 12, 25)})) == date(2026, 12, 28)
    days = plan_days(date(2026, 12, 21), phases_from([{"weeks": 2, "per_week": 3}]), 4, frozenset(range(5)),
                     frozenset({date(2026, 12, 25)}))
    assert days == ((date(2026, 12, 21), date(2026, 12, 21)), (date(2026, 12, 23), date(2026, 12, 23)),
                    (date(2026, 12, 25), date(2026, 12, 28)), (date(2026, 12, 30), date(2026, 12, 30)))


@pytest.mark.parametrize("start,end,expected", [
    ("08:00", "10:00", None),
    ("16:00", "18:00", None),                                  # ends on closing
    ("16:01", "18:01", ("start_time", "on Monday 30 Nov the clinic is open 08:00–18:00, so a 120-minute "
                                      "session starts by 16:00.")),
    ("07:59", "09:59", ("start_time", "08:00–18:00")),
])
def test_outside_hours_says_the_hours(start, end, expected):
    problem = hours_problem(CALENDAR, at("2026-11-30", start), at("2026-11-30", end))
    if expected is None:
        assert problem is None
    else:
        assert problem.field == expected[0] and "That time is outside clinic hours" in problem.message
        assert expected[1] in problem.message


def test_a_closed_day_is_refused_at_the_day():
    problem = hours_problem(CALENDAR, at("2026-12-25", "09:00"), at("2026-12-25", "11:00"))
    assert (problem.field, problem.message) == ("day", "The clinic is closed on Fri 25 Dec (Christmas Day).")


# --- the past, one infusion a day, the count, overlapping series ------------------------------------

@pytest.mark.parametrize("starts_at,field", [
    (NOW - timedelta(minutes=1), "start_time"),     # a minute ago, today
    (NOW, None),                                    # now
    (NOW + timedelta(minutes=1), None),
    (at("2026-11-25", "15:00"), "day"),             # yesterday
])
def test_booking_in_the_past_is_refused(starts_at, field):
    problem = past_problem(starts_at, NOW, ZONE)
    assert (problem.field if problem else None) == field
    if problem:
        assert problem.message.startswith("That time has passed (it is 10:00 on Thu 26 Nov).")
        assert "Record a past session" in problem.message


@pytest.mark.parametrize("other_start,refused", [
    (at("2026-11-30", "00:00"), True),     # the clinic day's first minute
    (at("2026-11-30", "23:59"), True),     # its last minute
    (at("2026-11-29", "23:59"), False),    # the day before
    (at("2026-12-01", "00:00"), False),    # the day after
])
def test_one_infusion_per_patient_per_clinic_day(other_start, refused):
    problem = same_day_problem(at("2026-11-30", "14:00"), [(other_start, other_start + TWO_HOURS)], ZONE)
    assert (problem is not None) is refused
    if refused:
        assert "already has a session on Mon 30 Nov" in problem and "physician's override with a reason" in problem


@pytest.mark.parametrize("requested,extra,refused", [(8, 2, False), (9, 2, True), (6, 0, False), (7, 0, True),
                                                     (40, 2, True)])
def test_a_count_beyond_the_protocol_and_its_allowance_is_refused(requested, extra, refused):
    problem = count_problem(requested, 6, extra, "IV ketamine induction")
    assert (problem is not None) is refused
    if requested == 40:
        assert problem == ("IV ketamine induction is a 6-session protocol: a series of it plans at most 8 sessions, "
                           "2 more than the protocol's 6 as the clinic's policy allows.")


OTHER = SeriesSpan("the series IV ketamine induction", date(2026, 11, 30), date(2026, 12, 11))


@pytest.mark.parametrize("first,last,refused", [
    (date(2026, 12, 12), date(2026, 12, 30), False),   # the day after its last
    (date(2026, 12, 11), date(2026, 12, 30), True),    # on its last day
    (date(2026, 11, 20), date(2026, 11, 30), True),    # ending on its first day
    (date(2026, 11, 20), date(2026, 11, 29), False),
    (date(2026, 12, 1), date(2026, 12, 3), True),      # inside it
])
def test_a_series_may_not_overlap_another_of_its_route(first, last, refused):
    problem = overlap_problem(first, last, [OTHER])
    assert (problem is not None) is refused
    if refused:
        assert problem.startswith("The patient already has the series IV ketamine induction from Mon 30 Nov to "
                                  "Fri 11 Dec 2026")


# --- placing a series' sessions (08:00–18:00, 2-hour chairs, 15 minutes' turnover) ---------------------

def search(now=NOW, chairs=(1, 2)):
    return Search(calendar=CALENDAR, duration=TWO_HOURS, turnover=TURNOVER, chair_ids=chairs, now=now)


def place(asked_on, day, clock, busy=None, patient=(), now=NOW, chairs=(1, 2)):
    return place_session(search(now, chairs), date.fromisoformat(asked_on), date.fromisoformat(day),
                         time.fromisoformat(clock), busy or {}, list(patient))


@pytest.mark.parametrize("clock,starts,reason", [
    ("09:00", "09:00", None),
    ("16:00", "16:00", None),                                         # ends on closing
    ("16:15", "08:00", "A 120-minute session at 16:15 would end after closing (18:00)."),
    ("23:30", "08:00", "23:30 is after closing time (18:00)."),
    ("07:00", "08:00", "The clinic opens at 08:00."),
])
def test_a_session_that_cannot_start_at_the_asked_time_says_why(clock, starts, reason):
    placement = place("2026-11-30", "2026-11-30", clock)
    assert placement.starts_at == at("2026-11-30", starts)
    assert placement.reasons == ((reason,) if reason else ())
    assert placement.as_asked is (reason is None)


def test_every_chair_taken_at_ten_moves_to_the_first_free_time_and_says_so():
    busy = {chair: [(at("2026-11-30", "08:00"), at("2026-11-30", "11:45"))] for chair in (1, 2)}
    placement = place("2026-11-30", "2026-11-30", "10:00", busy)
    assert placement.starts_at == at("2026-11-30", "12:00")
    assert placement.reasons == ("Every chair is taken at 10:00 (with turnover).",)


def test_today_never_before_now_and_a_passed_time_says_so():
    placement = place("2026-11-26", "2026-11-26", "09:00", now=at("2026-11-26", "10:07"))
    assert placement.starts_at == at("2026-11-26", "10:15")
    assert placement.reasons == ("09:00 has already passed.",)


def test_a_closed_day_moves_to_the_next_open_day_with_the_reason():
    placement = place("2026-12-25", "2026-12-28", "09:00")
    assert placement.starts_at == at("2026-12-28", "09:00")
    assert placement.reasons == ("The clinic is closed on Fri 25 Dec (Christmas Day).",)


def test_a_day_with_the_patients_other_session_gets_no_place():
    other = (at("2026-11-30", "14:00"), at("2026-11-30", "16:00"))
    placement = place("2026-11-30", "2026-11-30", "09:00", patient=[other])
    assert not placement.is_placed and "already has a session on Mon 30 Nov at 14:00" in placement.reasons[0]


def test_a_full_day_gets_no_place():
    busy = {1: [(at("2026-11-30", "08:00"), at("2026-11-30", "18:00"))]}
    placement = place("2026-11-30", "2026-11-30", "09:00", busy, chairs=(1,))
    assert not placement.is_placed
    assert placement.reasons == ("No chair is free for 120 minutes on Mon 30 Nov between 08:00 and closing (18:00).",)


def test_the_plan_code_names_each_chair_and_start():
    placed = Placement(date(2026, 11, 30), time(9), 2, at("2026-11-30", "09:00"))
    unplaced = Placement(date(2026, 12, 2), time(9), None, None, ("No chair",))
    assert plan_code([placed, unplaced]) == "2@20261130T1400Z;-"
