"""Scheduling rules, table-first: planning dates, plan warnings, daylight saving, collisions, free slots,
shifting, start dates. Just inside, on, and just outside every threshold. No app needed."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsmgr.rules.scheduling import (
    Phase,
    SlotRequest,
    booked_day_problem,
    clinic_day,
    find_slot,
    fits_hours,
    is_booked_today,
    local_to_utc,
    next_open_day,
    overlaps,
    phases_from,
    plan_dates,
    plan_warnings,
    round_up,
    shifted_dates,
    start_problem,
)

WEEKDAYS = frozenset(range(5))  # Monday to Friday, as seeded
EVERY_DAY = frozenset(range(7))
IV_INDUCTION = phases_from([{"weeks": 2, "per_week": 3}])
ESKETAMINE = phases_from([{"weeks": 4, "per_week": 2}, {"weeks": 4, "per_week": 1}])
WEEKLY = phases_from([{"weeks": 1, "per_week": 1}])
MONDAY = date(2026, 11, 30)
DAY = timedelta(days=1)


def d(text):
    return date.fromisoformat(text)


def gaps(dates):
    return [(after - before).days for before, after in zip(dates, dates[1:], strict=False)]


# --------------------------------------------------------------------------------------------
# Phases and open days
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("per_week,spacing", [(1, 7), (2, 3), (3, 2), (7, 1)])
def test_phase_spacing_is_days_between_sessions(per_week, spacing):
    assert Phase(weeks=1, per_week=per_week).spacing_days == spacing


def test_phases_from_reads_the_stored_json():
    assert (Phase(4, 2), Phase(4, 1)) == ESKETAMINE


@pytest.mark.parametrize("day,expected", [
    ("2026-11-27", "2026-11-27"),  # Friday: open
    ("2026-11-28", "2026-11-30"),  # Saturday → Monday
    ("2026-11-29", "2026-11-30"),  # Sunday → Monday
    ("2026-11-30", "2026-11-30"),  # Monday: open
])
def test_next_open_day_moves_forward_only(day, expected):
    assert next_open_day(d(day), WEEKDAYS) == d(expected)


def test_next_open_day_without_open_days_raises():
    with pytest.raises(ValueError, match="no open days"):
        next_open_day(MONDAY, frozenset())


# --------------------------------------------------------------------------------------------
# plan_dates
# --------------------------------------------------------------------------------------------

def test_iv_induction_from_monday_is_monday_wednesday_friday():
    dates = plan_dates(MONDAY, IV_INDUCTION, 6, WEEKDAYS)
    assert dates == (d("2026-11-30"), d("2026-12-02"), d("2026-12-04"),
                     d("2026-12-07"), d("2026-12-09"), d("2026-12-11"))
    assert [day.strftime("%a") for day in dates] == ["Mon", "Wed", "Fri"] * 2


def test_iv_induction_with_every_day_open_is_every_two_days():
    dates = plan_dates(MONDAY, IV_INDUCTION, 6, EVERY_DAY)
    assert gaps(dates) == [2] * 5


@pytest.mark.parametrize("start,expected", [
    # Tuesday: Thursday, then Saturday moves to Monday
    ("2026-12-01", ["2026-12-01", "2026-12-03", "2026-12-07", "2026-12-09", "2026-12-11", "2026-12-14"]),
    # Thursday: Saturday → Monday, then every two days from Monday
    ("2026-11-26", ["2026-11-26", "2026-11-30", "2026-12-02", "2026-12-04", "2026-12-07", "2026-12-09"]),
])
def test_weekend_date_moves_forward_to_monday(start, expected):
    dates = plan_dates(d(start), IV_INDUCTION, 6, WEEKDAYS)
    assert dates == tuple(map(d, expected))
    assert all(day.weekday() < 5 for day in dates)


@pytest.mark.parametrize("start", ["2026-11-28", "2026-11-29"])
def test_start_on_a_closed_day_begins_on_the_next_open_day(start):
    dates = plan_dates(d(start), IV_INDUCTION, 6, WEEKDAYS)
    assert dates == plan_dates(MONDAY, IV_INDUCTION, 6, WEEKDAYS)


def test_esketamine_twice_weekly_for_four_weeks_then_weekly():
    start = d("2027-01-04")  # a Monday
    dates = plan_dates(start, ESKETAMINE, 12, WEEKDAYS)
    per_week = [sum(1 for day in dates if (day - start).days // 7 == week) for week in range(8)]
    assert per_week == [2, 2, 2, 2, 1, 1, 1, 1]
    assert gaps(dates) == [3, 4] * 4 + [7, 7, 7]
    assert [day.strftime("%a") for day in dates[:8]] == ["Mon", "Thu"] * 4
    assert dates[-1] == d("2027-02-22")


@pytest.mark.parametrize("phases,count,expected_gaps", [
    (IV_INDUCTION, 8, [2] * 7),       # more than 2 weeks × 3: the last phase repeats
    (WEEKLY, 4, [7] * 3),             # a booster ordered 4 times: weekly
    (ESKETAMINE, 14, [3] * 8 + [7] * 5),
])
def test_count_beyond_the_phases_repeats_the_last_phase(phases, count, expected_gaps):
    dates = plan_dates(MONDAY, phases, count, EVERY_DAY)
    assert len(dates) == count
    assert gaps(dates) == expected_gaps


@pytest.mark.parametrize("count,length", [(0, 0), (1, 1), (2, 2)])
def test_count_gives_that_many_dates(count, length):
    assert len(plan_dates(MONDAY, IV_INDUCTION, count, WEEKDAYS)) == length


def test_count_one_is_the_first_open_day():
    assert plan_dates(d("2026-11-28"), IV_INDUCTION, 1, WEEKDAYS) == (MONDAY,)


def test_no_open_days_raises_value_error():
    with pytest.raises(ValueError):
        plan_dates(MONDAY, IV_INDUCTION, 6, frozenset())


@pytest.mark.parametrize("open_days", [frozenset({0}), frozenset({2, 4}), WEEKDAYS, EVERY_DAY])
def test_planned_dates_are_increasing_and_on_open_days(open_days):
    dates = plan_dates(d("2026-12-03"), ESKETAMINE, 12, open_days)
    assert all(before < after for before, after in zip(dates, dates[1:], strict=False))
    assert all(day.weekday() in open_days for day in dates)


# --------------------------------------------------------------------------------------------
# plan_warnings: max gap 7, span 21 counting both ends
# --------------------------------------------------------------------------------------------

def codes(warnings):
    return [w.code for w in warnings]


@pytest.mark.parametrize("gap,expected", [(6, []), (7, []), (8, ["GAP_TOO_LONG"])])
def test_gap_warning_only_past_seven_days(gap, expected):
    dates = (MONDAY, MONDAY + gap * DAY)
    assert codes(plan_warnings(dates, max_gap_days=7, max_span_days=None)) == expected


def test_gap_warning_names_the_sessions_and_the_limit():
    dates = (MONDAY, MONDAY + 2 * DAY, MONDAY + 12 * DAY)
    (warning,) = plan_warnings(dates, max_gap_days=7, max_span_days=None)
    assert warning.code == "GAP_TOO_LONG"
    assert "Sessions 2 and 3" in warning.message and "10 days" in warning.message and "7" in warning.message


def test_each_long_gap_gets_its_own_warning():
    dates = (MONDAY, MONDAY + 8 * DAY, MONDAY + 10 * DAY, MONDAY + 20 * DAY)
    assert codes(plan_warnings(dates, max_gap_days=7, max_span_days=None)) == ["GAP_TOO_LONG"] * 2


@pytest.mark.parametrize("span,expected", [(20, []), (21, []), (22, ["SERIES_TOO_LONG"])])
def test_span_counts_both_end_days(span, expected):
    dates = (MONDAY, MONDAY + (span - 1) * DAY)
    assert codes(plan_warnings(dates, max_gap_days=None, max_span_days=21)) == expected


def test_span_warning_gives_the_span():
    dates = (MONDAY, MONDAY + 21 * DAY)
    (warning,) = plan_warnings(dates, max_gap_days=None, max_span_days=21)
    assert "22 days" in warning.message and "21" in warning.message


def test_gap_and_span_warnings_together():
    dates = (MONDAY, MONDAY + 30 * DAY)
    assert codes(plan_warnings(dates, max_gap_days=7, max_span_days=21)) == ["GAP_TOO_LONG", "SERIES_TOO_LONG"]


@pytest.mark.parametrize("dates", [(), (MONDAY,), (MONDAY, MONDAY + 60 * DAY)])
def test_no_limits_give_no_warnings(dates):
    assert plan_warnings(dates, max_gap_days=None, max_span_days=None) == ()


def test_single_session_is_within_any_span():
    assert plan_warnings((MONDAY,), max_gap_days=7, max_span_days=1) == ()


def test_planned_iv_induction_needs_no_warning():
    dates = plan_dates(MONDAY, IV_INDUCTION, 6, WEEKDAYS)
    assert plan_warnings(dates, max_gap_days=7, max_span_days=21) == ()


# --------------------------------------------------------------------------------------------
# Daylight saving: the local clock time is kept, the UTC hour moves
# --------------------------------------------------------------------------------------------

NINE = time(9, 0)


@pytest.mark.parametrize("zone,day,utc_hour", [
    ("America/New_York", "2027-03-12", 14),  # Friday before the spring change (EST, UTC-5)
    ("America/New_York", "2027-03-15", 13),  # Monday after (EDT, UTC-4)
    ("America/New_York", "2026-10-30", 13),  # Friday before the autumn change (EDT)
    ("America/New_York", "2026-11-02", 14),  # Monday after (EST)
    ("Europe/London", "2027-03-26", 9),      # GMT
    ("Europe/London", "2027-03-29", 8),      # BST, UTC+1
    ("Europe/London", "2026-10-23", 8),      # BST
    ("Europe/London", "2026-10-26", 9),      # GMT
])
def test_local_to_utc_across_daylight_saving(zone, day, utc_hour):
    moment = local_to_utc(d(day), NINE, zone)
    assert moment == datetime.combine(d(day), time(utc_hour), tzinfo=UTC)
    assert moment.tzinfo is UTC


@pytest.mark.parametrize("zone,start,change", [
    ("America/New_York", "2027-03-08", "2027-03-14"),
    ("America/New_York", "2026-10-26", "2026-11-01"),
    ("Europe/London", "2027-03-22", "2027-03-28"),
    ("Europe/London", "2026-10-19", "2026-10-25"),
])
def test_series_crossing_daylight_saving_keeps_its_local_clock_time(zone, start, change):
    from zoneinfo import ZoneInfo

    dates = plan_dates(d(start), IV_INDUCTION, 6, WEEKDAYS)
    moments = [local_to_utc(day, NINE, zone) for day in dates]
    assert all(m.astimezone(ZoneInfo(zone)).time() == NINE for m in moments)
    before = {m.hour for m, day in zip(moments, dates, strict=True) if day < d(change)}
    after = {m.hour for m, day in zip(moments, dates, strict=True) if day > d(change)}
    assert len(before) == len(after) == 1 and before != after


# --------------------------------------------------------------------------------------------
# overlaps and fits_hours
# --------------------------------------------------------------------------------------------

def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


TURNOVER = timedelta(minutes=15)


@pytest.mark.parametrize("b_start,b_end,gap,expected", [
    (at(11), at(13), timedelta(0), False),       # touching: no overlap without a gap
    (at(11), at(13), TURNOVER, True),            # touching: overlaps once turnover counts
    (at(11, 14), at(13), TURNOVER, True),        # one minute inside the turnover
    (at(11, 15), at(13), TURNOVER, False),       # exactly the turnover later: free
    (at(10, 59), at(13), timedelta(0), True),    # one minute overlap
    (at(7), at(9), timedelta(0), False),         # touching before
    (at(7), at(9), TURNOVER, True),              # turnover applies on both sides
    (at(6, 45), at(8, 45), TURNOVER, False),
    (at(9, 30), at(10), timedelta(0), True),     # contained
    (at(8), at(12), timedelta(0), True),         # containing
])
def test_overlaps(b_start, b_end, gap, expected):
    assert overlaps(at(9), at(11), b_start, b_end, gap) is expected
    assert overlaps(b_start, b_end, at(9), at(11), gap) is expected  # symmetric


@pytest.mark.parametrize("start,end,expected", [
    (at(8), at(10), True),            # on opening
    (at(7, 59), at(9, 59), False),    # a minute before opening
    (at(16), at(18), True),           # ends on closing
    (at(16, 1), at(18, 1), False),    # a minute past closing
    (at(8), at(18), True),            # the whole day
])
def test_fits_hours_on_the_edges(start, end, expected):
    assert fits_hours(start, end, at(8), at(18)) is expected


# --------------------------------------------------------------------------------------------
# find_slot (opening 08:00, closing 18:00, 2-hour chairs, 15-minute turnover and steps)
# --------------------------------------------------------------------------------------------

CHAIRS = (1, 2, 3)


def slot_request(preferred=None, turnover=TURNOVER, duration=timedelta(hours=2)):
    return SlotRequest(preferred=preferred or at(9), opens=at(8), closes=at(18), duration=duration,
                       turnover=turnover)


def test_preferred_time_free_takes_the_first_chair():
    assert find_slot(slot_request(), CHAIRS, {}, []) == (1, at(9))


def test_first_chair_taken_takes_the_next_chair_at_the_preferred_time():
    assert find_slot(slot_request(), CHAIRS, {1: [(at(9), at(11))]}, []) == (2, at(9))


def test_preferred_taken_on_every_chair_moves_one_step_later():
    busy = {chair: [(at(7), at(8, 50))] for chair in CHAIRS}  # ends 08:50, turnover to 09:05
    assert find_slot(slot_request(), CHAIRS, busy, []) == (1, at(9, 15))


@pytest.mark.parametrize("turnover,expected", [(TURNOVER, at(11, 15)), (timedelta(0), at(11))])
def test_turnover_respected_after_a_booking(turnover, expected):
    busy = {chair: [(at(9), at(11))] for chair in CHAIRS}
    assert find_slot(slot_request(turnover=turnover), CHAIRS, busy, []) == (1, expected)


def test_turnover_respected_before_a_booking():
    # A booking at 11:00 on the only chair: 09:00–11:00 would leave no turnover; the next slot is 11:00 + 2h15.
    busy = {1: [(at(11), at(13))]}
    assert find_slot(slot_request(), (1,), busy, []) == (1, at(13, 15))


def test_whole_afternoon_taken_finds_an_earlier_slot():
    busy = {chair: [(at(12), at(18))] for chair in CHAIRS}
    assert find_slot(slot_request(preferred=at(14)), CHAIRS, busy, []) == (1, at(8))


@pytest.mark.parametrize("busy_from,turnover,expected", [
    (at(10, 14), TURNOVER, None),         # 08:00–10:00 leaves 14 minutes: too little
    (at(10, 15), TURNOVER, (1, at(8))),   # exactly the turnover
    (at(9, 59), timedelta(0), None),
    (at(10), timedelta(0), (1, at(8))),   # touching, no turnover needed
])
def test_earlier_slot_must_leave_turnover_before_the_next_booking(busy_from, turnover, expected):
    busy = {1: [(busy_from, at(18))]}
    assert find_slot(slot_request(preferred=at(14), turnover=turnover), (1,), busy, []) == expected


def test_patient_busy_blocks_every_chair():
    assert find_slot(slot_request(), CHAIRS, {}, [(at(9), at(11))]) == (1, at(11))


def test_patient_busy_needs_no_turnover():
    assert find_slot(slot_request(), CHAIRS, {}, [(at(7), at(9))]) == (1, at(9))


@pytest.mark.parametrize("preferred,expected", [
    (at(16), at(16)),      # ends exactly at closing
    (at(16, 15), at(8)),   # would end after closing: search from opening
])
def test_slot_never_runs_past_closing(preferred, expected):
    assert find_slot(slot_request(preferred=preferred), CHAIRS, {}, []) == (1, expected)


def test_full_day_gives_none():
    busy = {chair: [(at(8), at(18))] for chair in CHAIRS}
    assert find_slot(slot_request(), CHAIRS, busy, []) is None


def test_no_chairs_gives_none():
    assert find_slot(slot_request(), (), {}, []) is None


def test_patient_busy_all_day_gives_none():
    assert find_slot(slot_request(), CHAIRS, {}, [(at(8), at(18))]) is None


# --------------------------------------------------------------------------------------------
# shifted_dates and start_problem
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dates,delta,expected", [
    # Wed, Fri, Mon + 2: Fri, Sun → Mon, Wed; order kept
    (["2026-12-02", "2026-12-04", "2026-12-07"], 2, ["2026-12-04", "2026-12-07", "2026-12-09"]),
    # Thu, Fri + 2: both snap to Monday; the second moves on to Tuesday
    (["2026-12-03", "2026-12-04"], 2, ["2026-12-07", "2026-12-08"]),
    # Mon, Wed, Fri + 7: a week later, same weekdays
    (["2026-11-30", "2026-12-02", "2026-12-04"], 7, ["2026-12-07", "2026-12-09", "2026-12-11"]),
    ([], 2, []),
])
def test_shifted_dates_on_open_days_in_order(dates, delta, expected):
    shifted = shifted_dates(tuple(map(d, dates)), delta, WEEKDAYS)
    assert shifted == tuple(map(d, expected))
    assert all(before < after for before, after in zip(shifted, shifted[1:], strict=False))


@pytest.mark.parametrize("start_on,problem", [
    (date(2026, 11, 25), True),    # yesterday
    (date(2026, 11, 26), False),   # today
    (date(2026, 11, 27), False),   # tomorrow
])
def test_start_problem_refuses_the_past_only(start_on, problem):
    found = start_problem(start_on, today=date(2026, 11, 26))
    assert (found is not None) is problem
    if problem:
        assert "past" in found


# --------------------------------------------------------------------------------------------
# The right session on the right day (clinic time, America/New_York)
# --------------------------------------------------------------------------------------------

ZONE = "America/New_York"


def clinic(text):
    """A clinic-local wall-clock time as an aware datetime (UTC inside, as the database keeps it)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


NOW = clinic("2026-11-26T10:00")  # Thursday


@pytest.mark.parametrize("starts_at,now,today", [
    (clinic("2026-11-26T00:00"), NOW, True),    # midnight that starts today
    (clinic("2026-11-26T23:59"), NOW, True),    # 04:59 UTC tomorrow, still today in the clinic
    (clinic("2026-11-25T23:59"), NOW, False),   # yesterday's last minute (04:59 UTC today)
    (clinic("2026-11-27T00:00"), NOW, False),   # tomorrow's first minute
    (clinic("2026-11-26T11:00"), clinic("2026-11-26T23:59"), True),   # late the same evening
    (clinic("2026-11-26T11:00"), clinic("2026-11-27T00:00"), False),  # just after midnight
    # 1 November 2026: clocks go back, a 25-hour day; 00:30 EDT and 23:30 EST are the same day.
    (clinic("2026-11-01T00:30"), clinic("2026-11-01T23:30"), True),
    (clinic("2026-11-01T23:30"), clinic("2026-11-02T00:00"), False),
    (clinic("2026-10-31T23:59"), clinic("2026-11-01T00:00"), False),
    # 8 March 2026: clocks go forward, a 23-hour day.
    (clinic("2026-03-08T00:30"), clinic("2026-03-08T23:30"), True),
    (clinic("2026-03-08T23:59"), clinic("2026-03-09T00:00"), False),
])
def test_a_session_is_booked_today_by_the_clinic_calendar_not_utc(starts_at, now, today):
    assert is_booked_today(starts_at, now, ZONE) is today
    assert (booked_day_problem(starts_at, now, ZONE) is None) is today


def test_clinic_day_reads_the_moment_in_the_clinic_zone():
    assert clinic_day(datetime(2026, 11, 27, 4, 59, tzinfo=UTC), ZONE) == date(2026, 11, 26)
    assert clinic_day(datetime(2026, 11, 27, 5, 0, tzinfo=UTC), ZONE) == date(2026, 11, 27)


def test_another_day_is_named_with_the_move_to_today_advice():
    assert booked_day_problem(clinic("2026-12-08T09:00"), NOW, ZONE) == (
        "This session is booked for Tue 8 Dec, not today. Move it to today first.")
    assert booked_day_problem(clinic("2026-11-25T15:00"), NOW, ZONE) == (
        "This session is booked for Wed 25 Nov, not today. Move it to today first.")


def test_a_session_past_check_in_on_another_day_is_not_told_to_move():
    problem = booked_day_problem(clinic("2026-11-25T09:00"), NOW, ZONE, movable=False)
    assert problem.startswith("This session is booked for Wed 25 Nov, not today")
    assert "cannot be moved" in problem and "Move it to today first" not in problem
    assert booked_day_problem(clinic("2026-11-26T09:00"), NOW, ZONE, movable=False) is None


@pytest.mark.parametrize("moment,expected", [
    ("10:00:00", "10:00:00"),
    ("10:00:01", "10:15:00"),
    ("10:07:00", "10:15:00"),
    ("10:15:00", "10:15:00"),
    ("10:45:30", "11:00:00"),
    ("23:50:00", "00:00:00"),
])
def test_round_up_to_the_next_quarter_hour(moment, expected):
    start = datetime.combine(date(2026, 11, 26), time.fromisoformat(moment), tzinfo=UTC)
    assert round_up(start, timedelta(minutes=15)).time() == time.fromisoformat(expected)
