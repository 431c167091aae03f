"""Follow-up plan rules, table first: each interval just inside, on and just outside; daylight saving in
America/New_York (2026: spring forward Sun 8 Mar, fall back Sun 1 Nov); re-planning without duplicates.
No app needed."""
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from opsmgr.rules.followups import (
    ExistingItem,
    Kind,
    RemsState,
    ScoreFacts,
    SeriesFacts,
    SessionFacts,
    after_not_reached,
    booster_trigger,
    care_phase,
    induction_size,
    last_induction_session,
    next_phq9_request_day,
    overdue_words,
    plan,
    reconcile,
    rems_status,
    rems_submission_problems,
    standing,
    wall_clock_after,
)
from opsmgr.rules.policy import DEFAULT_POLICY, ClinicalPolicy
from opsmgr.rules.reminders import plan_reminders
from opsmgr.rules.scheduling import ClinicCalendar

ZONE = "America/New_York"
NY = ZoneInfo(ZONE)
P = DEFAULT_POLICY
SECOND = timedelta(seconds=1)
PATIENT = 7


def local(text):
    """An aware UTC datetime from clinic-local "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


def held(id_, starts, *, minutes=120, status="discharged", note="signed"):
    starts_at = local(starts)
    ends_at = starts_at + timedelta(minutes=minutes)
    return SessionFacts(id=id_, starts_at=starts_at, ends_at=ends_at, status=status,
                        discharged_at=ends_at if status == "discharged" else None, note_status=note)


def iv_series(*sessions, id_=1, status="active", induction=6, route="iv"):
    return SeriesFacts(id=id_, route=route, status=status, induction_sessions=induction, sessions=tuple(sessions))


def by_kind(items, kind):
    return [item for item in items if item.kind == kind]


# Six IV induction infusions Mon/Wed/Fri from Mon 30 Nov 2026, 10:00-12:00, all discharged.
INDUCTION_DAYS = ["2026-11-30", "2026-12-02", "2026-12-04", "2026-12-07", "2026-12-09", "2026-12-11"]
INDUCTION = tuple(held(n, f"{day} 10:00") for n, day in enumerate(INDUCTION_DAYS, 1))


# --- clinic wall-clock arithmetic ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start,hours,due,elapsed_hours", [
    ("2026-12-01 17:00", 24, "2026-12-02 17:00", 24),
    ("2026-03-07 17:00", 24, "2026-03-08 17:00", 23),   # spring forward: a 23-hour day
    ("2026-10-31 17:00", 24, "2026-11-01 17:00", 25),   # fall back: a 25-hour day
    ("2026-03-06 17:00", 72, "2026-03-09 17:00", 71),
    ("2026-10-30 17:00", 72, "2026-11-02 17:00", 73),
])
def test_calls_are_due_at_the_same_clinic_clock_time_across_daylight_saving(start, hours, due, elapsed_hours):
    moment = wall_clock_after(local(start), timedelta(hours=hours), ZONE)
    assert moment == local(due)
    assert moment - local(start) == timedelta(hours=elapsed_hours)


def test_a_wall_clock_time_in_the_spring_gap_resolves_forward():
    moment = wall_clock_after(local("2026-03-07 02:30"), timedelta(hours=24), ZONE)
    assert moment.astimezone(NY).strftime("%m-%d %H:%M %Z") == "03-08 03:30 EDT"


# --- check-in calls, first-session call, unsigned notes -------------------------------------------------------------

@pytest.mark.parametrize("status,calls", [
    ("discharged", 1), ("recovery", 0), ("infusing", 0), ("scheduled", 0), ("cancelled", 0), ("no_show", 0),
])
def test_a_next_day_call_follows_every_discharged_session_only(status, calls):
    series = iv_series(held(1, "2026-11-30 10:00"), held(2, "2026-12-02 10:00", status=status))
    items = plan(PATIENT, [series], [], P, ZONE)
    assert [i.session_id for i in by_kind(items, Kind.CHECKIN_CALL)] == [1] + [2] * calls


def test_the_next_day_call_is_due_24_hours_after_discharge_and_overdue_from_the_next_day():
    session = held(1, "2026-12-01 15:00")  # discharged 17:00
    [call] = by_kind(plan(PATIENT, [iv_series(session)], [], P, ZONE), Kind.CHECKIN_CALL)
    assert (call.key, call.for_role, call.series_id) == ("checkin_call:session:1", "coordinator", 1)
    assert (call.due_at, call.overdue_at) == (local("2026-12-02 17:00"), local("2026-12-03 00:00"))


@pytest.mark.parametrize("offset,expected", [
    (-SECOND, "later"), (timedelta(0), "due"), (timedelta(hours=7) - SECOND, "due"), (timedelta(hours=7), "overdue"),
])
def test_a_call_shows_from_its_due_time_and_is_overdue_from_midnight(offset, expected):
    [call] = by_kind(plan(PATIENT, [iv_series(held(1, "2026-12-01 15:00"))], [], P, ZONE), Kind.CHECKIN_CALL)
    assert standing(call, call.due_at + offset) == expected


def test_the_72_hour_call_follows_the_first_held_session_of_each_series():
    first = held(1, "2026-11-30 10:00", status="cancelled")
    series = iv_series(first, held(2, "2026-12-02 10:00"), held(3, "2026-12-04 10:00"))
    booster = iv_series(held(9, "2027-01-20 10:00"), id_=2, induction=0)
    calls = by_kind(plan(PATIENT, [series, booster], [], P, ZONE), Kind.FIRST_SESSION_CALL)
    assert [(c.session_id, c.due_at) for c in calls] == [(2, local("2026-12-05 12:00")), (9, local("2027-01-23 12:00"))]


def test_the_call_hours_follow_the_policy():
    policy = ClinicalPolicy(checkin_call_hours_after=20, first_session_call_hours_after=48)
    items = plan(PATIENT, [iv_series(held(1, "2026-12-01 10:00"))], [], policy, ZONE)
    assert by_kind(items, Kind.CHECKIN_CALL)[0].due_at == local("2026-12-02 08:00")
    assert by_kind(items, Kind.FIRST_SESSION_CALL)[0].due_at == local("2026-12-03 12:00")


@pytest.mark.parametrize("note,reminded", [(None, True), ("draft", True), ("complete", True), ("signed", False)])
def test_an_unsigned_note_reaches_the_physician_48_hours_after_the_session(note, reminded):
    session = held(1, "2026-12-01 10:00", note=note)
    items = by_kind(plan(PATIENT, [iv_series(session)], [], P, ZONE), Kind.UNSIGNED_NOTE)
    assert [(i.due_at, i.for_role) for i in items] == ([(local("2026-12-03 12:00"), "physician")] if reminded else [])


# --- end of induction ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("planned,phases,review_week,is_induction,size", [
    (6, ((2, 3),), None, True, 6),                  # IV induction: the planned count
    (12, ((4, 2), (4, 1)), 4, True, 8),             # esketamine: weeks 1-4 twice weekly
    (12, ((4, 2), (4, 1)), 6, True, 10),
    (12, ((4, 2),), 6, True, 12),                   # the last phase repeats, capped at the planned count
    (6, ((2, 3),), 5, True, 6),
    (1, ((1, 1),), None, False, 0),                 # a booster is no induction
])
def test_induction_size(planned, phases, review_week, is_induction, size):
    assert induction_size(planned, phases, review_week, is_induction=is_induction) == size


@pytest.mark.parametrize("sessions,status,last", [
    (INDUCTION, "completed", 6),
    (INDUCTION[:5] + (replace(INDUCTION[5], status="scheduled", discharged_at=None),), "active", None),  # 5 of 6
    (INDUCTION[:5] + (replace(INDUCTION[5], status="cancelled"),), "completed", 5),  # ended one short
    (INDUCTION[:3] + (replace(INDUCTION[3], status="cancelled"),), "stopped", None),  # stopped: never ended
    (INDUCTION[:5] + (replace(INDUCTION[5], status="no_show"), held(7, "2026-12-14 10:00")), "completed", 7),
])
def test_the_last_induction_session(sessions, status, last):
    found = last_induction_session(iv_series(*sessions, status=status))
    assert (found.id if found else None) == last


def test_the_end_of_induction_review_is_due_at_the_last_induction_discharge():
    [review] = by_kind(plan(PATIENT, [iv_series(*INDUCTION, status="completed")], [], P, ZONE), Kind.INDUCTION_REVIEW)
    assert (review.key, review.for_role, review.session_id) == ("induction_review:series:1", "physician", 6)
    assert review.due_at == local("2026-12-11 12:00")


def test_the_esketamine_review_is_the_week_4_review_after_the_eighth_session():
    days = [date(2026, 11, 30) + timedelta(days=d) for d in (0, 3, 7, 10, 14, 17, 21, 24, 28, 35, 42, 49)]
    sessions = [held(n, f"{day} 10:00") for n, day in enumerate(days, 1)]
    for n in range(9, 13):
        sessions[n - 1] = replace(sessions[n - 1], status="scheduled", discharged_at=None)
    series = iv_series(*sessions, route="esketamine", induction=induction_size(12, ((4, 2), (4, 1)), 4))
    [review] = by_kind(plan(PATIENT, [series], [], P, ZONE), Kind.INDUCTION_REVIEW)
    assert review.session_id == 8 and review.due_at == local("2026-12-24 12:00")
    seven = replace(series, sessions=tuple(sessions[:7]) + (replace(sessions[7], status="scheduled"),))
    assert by_kind(plan(PATIENT, [seven], [], P, ZONE), Kind.INDUCTION_REVIEW) == []


# --- PHQ-9 requests -----------------------------------------------------------------------------------------------

A = date(2026, 12, 11)  # the last induction session's day


@pytest.mark.parametrize("after,expected", [
    (0, 7), (6, 7), (7, 14), (13, 14), (14, 21), (27, 28),   # weekly: days 7, 14, 21, 28
    (28, 42), (41, 42), (42, 56), (55, 56), (56, 70),        # then every 14 days
])
def test_the_phq9_request_schedule(after, expected):
    assert next_phq9_request_day(A, P, after=A + timedelta(days=after)) == A + timedelta(days=expected)


def test_the_phq9_schedule_follows_the_policy():
    policy = ClinicalPolicy(phq9_first_request_days=3, phq9_weekly_weeks=2, phq9_then_every_days=30)
    got = [next_phq9_request_day(A, policy, after=A + timedelta(days=n)) - A for n in (0, 3, 10, 40)]
    assert [d.days for d in got] == [3, 10, 40, 70]


def phq9(series, scores=(), **kwargs):
    return by_kind(plan(PATIENT, series, scores, P, ZONE, **kwargs), Kind.PHQ9_REQUEST)


def test_no_phq9_request_before_the_induction_is_over():
    assert phq9([iv_series(*INDUCTION[:5])]) == []


def test_the_first_phq9_request_is_7_days_after_the_last_induction_session():
    [request] = phq9([iv_series(*INDUCTION, status="completed")])
    assert request.key == "phq9_request:patient:7:2026-12-18"
    assert (request.due_at, request.for_role) == (local("2026-12-18 00:00"), "coordinator")


@pytest.mark.parametrize("taken,due", [
    ("2026-12-11 09:50", "2026-12-18"),   # the checklist PHQ-9 of the last session
    ("2026-12-17 23:59", "2026-12-18"),   # the day before the request
    ("2026-12-18 09:00", "2026-12-25"),   # on its day: done, next week's is wanted
    ("2026-12-20 09:00", "2026-12-25"),   # taken late: the schedule keeps its days
])
def test_a_phq9_taken_moves_the_open_request_to_the_next_day_on_the_schedule(taken, due):
    [request] = phq9([iv_series(*INDUCTION, status="completed")], [ScoreFacts(1, local(taken), 6)])
    assert request.key.endswith(due)


def test_a_request_closed_without_a_score_also_moves_on():
    [request] = phq9([iv_series(*INDUCTION, status="completed")], phq9_request_closed_at=local("2026-12-18 11:00"))
    assert request.key.endswith("2026-12-25")


def test_a_new_session_resets_the_phq9_clock():
    booster = iv_series(held(20, "2027-01-04 10:00"), id_=2, induction=0, status="completed")
    [request] = phq9([iv_series(*INDUCTION, status="completed"), booster])
    assert request.key.endswith("2027-01-11")


@pytest.mark.parametrize("booked,requested", [
    ("2026-12-17 10:00", False), ("2026-12-18 16:00", False),   # on or before the request day: its checklist asks
    ("2026-12-19 08:00", True),
])
def test_no_phq9_request_while_a_session_is_booked_on_or_before_its_day(booked, requested):
    booster = iv_series(held(20, booked, status="scheduled"), id_=2, induction=0, status="planned")
    assert bool(phq9([iv_series(*INDUCTION, status="completed"), booster])) == requested


@pytest.mark.parametrize("statuses,phase,requested", [
    (("completed",), "maintenance", True),
    (("completed", "planned"), "active", True),
    (("stopped",), "closed", False),
    (("completed", "stopped"), "closed", False),   # the latest series was stopped
])
def test_phq9_requests_run_while_care_is_active_or_in_maintenance(statuses, phase, requested):
    series = [iv_series(*INDUCTION, status=statuses[0])]
    if len(statuses) > 1:
        series.append(iv_series(held(20, "2027-02-01 10:00", status="cancelled"), id_=2, induction=0,
                                status=statuses[1]))
    assert care_phase(series) == phase
    assert bool(phq9(series)) == requested


# --- booster review -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("best,total,trigger", [
    (4, 8, False), (4, 9, True), (4, 10, True),     # rise: 4 not, 5 on, 6 over
    (6, 9, False), (6, 10, True), (6, 11, True),    # back to 10 or more (a rise of only 4)
    (9, 9, False), (9, 10, True),
    (10, 14, False), (10, 15, True),                # never below 10: only the rise counts
    (12, 11, False),
])
def test_booster_trigger(best, total, trigger):
    assert booster_trigger(total, best, P) is trigger


def score(id_, when, total):
    return ScoreFacts(id_, local(when), total)


def boosters(scores, **kwargs):
    return by_kind(plan(PATIENT, [iv_series(*INDUCTION, status="completed")], scores, P, ZONE, **kwargs),
                   Kind.BOOSTER_REVIEW)


def test_the_best_is_counted_from_the_last_induction_session_on():
    scores = [score(1, "2026-12-09 09:50", 2),     # during induction: not counted
              score(2, "2026-12-11 09:50", 6),     # the last induction session's checklist: counted
              score(3, "2026-12-25 09:00", 10)]
    [review] = boosters(scores)
    assert (review.key, review.score_id, review.for_role) == ("booster_review:patient:7:score:3", 3, "physician")
    assert review.due_at == local("2026-12-25 09:00")
    assert boosters(scores[:2] + [score(3, "2026-12-25 09:00", 9)]) == []


def test_one_open_booster_review_at_a_time():
    scores = [score(1, "2026-12-11 09:50", 3), score(2, "2026-12-25 09:00", 9), score(3, "2027-01-08 09:00", 14),
              score(4, "2027-01-22 09:00", 4)]
    assert [r.score_id for r in boosters(scores)] == [2], "the first trigger stays until closed, even if it falls back"
    assert [r.score_id for r in boosters(scores, booster_review_closed_at=local("2026-12-26 10:00"))] == [3]
    assert boosters(scores, booster_review_closed_at=local("2027-01-08 09:00")) == []


# --- REMS Patient Monitoring Form ---------------------------------------------------------------------------------

def test_every_discharged_esketamine_session_has_a_rems_form_due_on_day_7():
    series = iv_series(held(1, "2026-03-03 10:00"), held(2, "2026-03-06 10:00", status="scheduled"),
                       route="esketamine", induction=8)
    [form] = by_kind(plan(PATIENT, [series], [], P, ZONE), Kind.REMS_FORM)
    assert (form.key, form.session_id) == ("rems_form:session:1", 1)
    assert (form.remind_at, form.due_at, form.overdue_at) == (
        local("2026-03-08 00:00"), local("2026-03-10 00:00"), local("2026-03-11 00:00"))   # across spring forward
    assert by_kind(plan(PATIENT, [replace(series, route="iv")], [], P, ZONE), Kind.REMS_FORM) == []


@pytest.mark.parametrize("day,state", [
    (4, RemsState.UPCOMING), (5, RemsState.REMIND), (6, RemsState.REMIND), (7, RemsState.DUE),
    (8, RemsState.OVERDUE), (30, RemsState.OVERDUE),
])
def test_rems_form_state_by_day(day, state):
    held_on = date(2026, 12, 1)
    status = rems_status(held_on, held_on + timedelta(days=day), P)
    assert (status.state, status.due_on) == (state, date(2026, 12, 8))


@pytest.mark.parametrize("submitted_on,method,state,late", [
    (date(2026, 12, 8), "portal", RemsState.SUBMITTED, False),
    (date(2026, 12, 9), "fax", RemsState.SUBMITTED, True),
    (date(2026, 12, 8), None, RemsState.OVERDUE, None),     # a date without a method does not close it
    (None, "fax", RemsState.OVERDUE, None),
    (date(2026, 12, 8), "email", RemsState.OVERDUE, None),
])
def test_a_rems_form_closes_only_with_a_date_and_a_method(submitted_on, method, state, late):
    status = rems_status(date(2026, 12, 1), date(2026, 12, 10), P, submitted_on=submitted_on, method=method)
    assert (status.state, status.submitted_late) == (state, late)


@pytest.mark.parametrize("submitted_on,method,fields", [
    (date(2026, 12, 3), "portal", []),
    (date(2026, 12, 1), "fax", []),
    (None, "portal", ["submitted_on"]),
    (date(2026, 11, 30), "portal", ["submitted_on"]),   # before the session
    (date(2026, 12, 5), "portal", ["submitted_on"]),    # in the future
    (date(2026, 12, 3), "", ["method"]),
    (None, None, ["submitted_on", "method"]),
])
def test_rems_submission_problems(submitted_on, method, fields):
    problems = rems_submission_problems(submitted_on, method, session_on=date(2026, 12, 1), today=date(2026, 12, 4))
    assert [p.field for p in problems] == fields


# --- not reached, overdue in words --------------------------------------------------------------------------------

WEEKDAY_HOURS = {day: (time(8), time(17)) for day in range(5)}
CALENDAR = ClinicCalendar(hours=WEEKDAY_HOURS, closures={date(2026, 12, 8): "Staff training"}, zone=ZONE)


@pytest.mark.parametrize("missed,misses,due,escalate", [
    ("2026-12-03 16:00", 1, "2026-12-04 08:00", False),   # Thursday → Friday
    ("2026-12-04 09:00", 2, "2026-12-07 08:00", False),   # Friday → Monday
    ("2026-12-07 09:00", 3, "2026-12-09 08:00", True),    # Tuesday closed; the third miss escalates
    ("2026-12-09 23:59", 4, "2026-12-10 08:00", True),
    ("2026-03-06 10:00", 1, "2026-03-09 08:00", False),   # over the spring-forward weekend: 08:00 EDT
])
def test_not_reached_is_retried_the_next_clinic_day_and_the_third_miss_escalates(missed, misses, due, escalate):
    assert after_not_reached(local(missed), misses, CALENDAR, P) == (local(due), escalate)


def test_the_escalating_miss_follows_the_policy():
    policy = ClinicalPolicy(followup_misses_before_escalation=2)
    assert after_not_reached(local("2026-12-03 16:00"), 2, CALENDAR, policy).escalate


@pytest.mark.parametrize("due,now,words", [
    ("2026-12-10 17:00", "2026-12-08 09:00", "due in 2 days"),
    ("2026-12-10 17:00", "2026-12-09 23:59", "due tomorrow"),
    ("2026-12-10 17:00", "2026-12-10 00:00", "due today"),
    ("2026-12-10 17:00", "2026-12-10 23:59", "due today"),
    ("2026-12-10 17:00", "2026-12-11 00:00", "1 day overdue"),
    ("2026-12-10 17:00", "2026-12-12 08:00", "2 days overdue"),
    ("2026-10-31 23:30", "2026-11-01 23:30", "1 day overdue"),   # a 25-hour day is one day
])
def test_overdue_words(due, now, words):
    assert overdue_words(local(due), local(now), ZONE) == words


# --- reconcile: re-planning never duplicates, never re-opens -----------------------------------------------------

def stored(items, status="open"):
    return [ExistingItem(key=i.key, status=status, expires_at=i.expires_at, id=n) for n, i in enumerate(items)]


def keys(items):
    return sorted(getattr(i, "key", None) or i.item.key for i in items)


def test_replanning_the_same_facts_adds_and_cancels_nothing():
    wanted = plan(PATIENT, [iv_series(*INDUCTION, status="completed")], [], P, ZONE)
    result = reconcile(stored(wanted), wanted, local("2026-12-12 09:00"))
    assert (result.to_add, result.to_cancel, len(result.to_keep)) == ((), (), len(wanted))


def test_done_items_are_never_reopened_nor_added_again():
    wanted = plan(PATIENT, [iv_series(held(1, "2026-12-01 10:00"))], [], P, ZONE)
    result = reconcile(stored(wanted, status="done"), wanted, local("2026-12-02 09:00"))
    assert result == ((), (), ())


BOOKED = held(5, "2026-12-09 10:00", status="scheduled")
BEFORE = local("2026-12-06 09:00")   # before both reminders


def reminders_for(session):
    return plan_reminders(session, P, ZONE)


def test_moving_a_session_cancels_its_pending_reminders_and_plans_new_ones():
    old = reminders_for(BOOKED)
    moved = reminders_for(replace(BOOKED, starts_at=local("2026-12-10 14:00"), ends_at=local("2026-12-10 16:00")))
    result = reconcile(stored(old), moved, BEFORE)
    assert keys(result.to_add) == keys(moved) and keys(result.to_cancel) == keys(old)
    assert {c.reason for c in result.to_cancel} == {"unwanted"}


def test_moving_after_the_first_reminder_went_keeps_the_sent_one_out_of_it():
    old = reminders_for(BOOKED)
    existing = [*stored(old[:1], status="sent"), *stored(old[1:])]
    moved = reminders_for(replace(BOOKED, starts_at=local("2026-12-10 14:00"), ends_at=local("2026-12-10 16:00")))
    result = reconcile(existing, moved, local("2026-12-07 12:00"))
    assert keys(result.to_cancel) == [old[1].key] and keys(result.to_add) == keys(moved)


@pytest.mark.parametrize("status", ["cancelled", "no_show"])
def test_cancelling_or_a_no_show_cancels_the_reminders_and_plans_no_call(status):
    before = reminders_for(BOOKED) + plan(PATIENT, [iv_series(BOOKED)], [], P, ZONE)
    after = reminders_for(replace(BOOKED, status=status)) + plan(PATIENT, [iv_series(replace(BOOKED, status=status))],
                                                                 [], P, ZONE)
    result = reconcile(stored(before), after, BEFORE)
    assert result.to_add == () and keys(result.to_cancel) == keys(before)


def test_a_no_show_lets_the_phq9_request_its_booking_held_back_return():
    booked = iv_series(held(20, "2026-12-17 10:00", status="scheduled"), id_=2, induction=0, status="planned")
    missed = replace(booked, sessions=(replace(booked.sessions[0], status="no_show"),))
    induction = iv_series(*INDUCTION, status="completed")
    assert phq9([induction, booked]) == []
    assert [r.key for r in phq9([induction, missed])] == ["phq9_request:patient:7:2026-12-18"]


def test_completing_a_session_expires_pending_reminders_and_plans_its_calls():
    done = replace(BOOKED, status="discharged", discharged_at=BOOKED.ends_at, note_status=None)
    before = reminders_for(BOOKED)
    after = reminders_for(done) + plan(PATIENT, [iv_series(done)], [], P, ZONE)
    result = reconcile(stored(before[:1], status="sent") + stored(before[1:]), after, local("2026-12-09 12:30"))
    assert [(c.item.key, c.reason) for c in result.to_cancel] == [(before[1].key, "expired")]
    assert {i.kind for i in result.to_add} == {Kind.CHECKIN_CALL, Kind.FIRST_SESSION_CALL, Kind.UNSIGNED_NOTE}


def test_an_open_item_past_its_expiry_is_cancelled_as_expired_even_if_wanted():
    wanted = reminders_for(BOOKED)
    result = reconcile(stored(wanted), wanted, BOOKED.starts_at)
    assert [c.reason for c in result.to_cancel] == ["expired", "expired"]


def test_a_retried_item_keeps_its_own_due_time():
    wanted = plan(PATIENT, [iv_series(held(1, "2026-12-01 10:00"))], [], P, ZONE)
    retried = [replace(e, status="open") for e in stored(wanted)]
    assert reconcile(retried, wanted, local("2026-12-04 09:00")).to_keep == tuple(retried)


def test_two_wanted_items_with_one_key_are_a_bug():
    item = SimpleNamespace(key="x", expires_at=None)
    with pytest.raises(ValueError, match="share the key"):
        reconcile([], [item, item], BEFORE)
