"""Booking services on both backends: ordering a series, booking races, double booking, moving (and
shifting the rest), the session state machine, stopping a series, and UTC storage.

The clock starts on Thursday 2026-11-26 at 15:00 UTC, 10:00 in the clinic (America/New_York);
the clinic is open Monday to Friday 08:00–18:00 with 15 minutes of chair turnover.
"""
import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import Actor
from opsmgr.extensions import db
from opsmgr.rules.scheduling import next_open_day
from opsmgr.schedule import service as schedule
from opsmgr.schedule.service import BookingError
from opsmgr.series import service as series_service
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from tests.factories import create_chairs, create_patient, create_user, order_series, series_order

ZONE = ZoneInfo("America/New_York")
COORDINATOR = Actor(user_id=None, username="test-coordinator", role="coordinator")
WEEKDAYS = frozenset(range(5))
MONDAY = date(2026, 11, 30)
TUESDAY = date(2026, 12, 1)
NINE = time(9, 0)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def local(moment):
    return moment.astimezone(ZONE)


def local_days(series):
    return [local(s.starts_at).date() for s in series.sessions]


def at_local(day, clock):
    return datetime.combine(day, clock, tzinfo=ZONE).astimezone(UTC)


def audit_rows(action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def live_sessions():
    return db.session.scalars(select(InfusionSession).where(InfusionSession.status.in_(schedule.ACTIVE_VALUES))
                              .order_by(InfusionSession.starts_at, InfusionSession.chair_id)).all()


def new_series(clock, start_on=MONDAY, protocol="iv-induction", preferred="09:00", **fields):
    patient = create_patient(now=clock())
    return order_series(patient_id=patient.id, now=clock(), start_on=start_on, protocol_code=protocol,
                        preferred_time=preferred, **fields)


def protocol_id(code):
    return db.session.scalar(select(Protocol.id).where(Protocol.code == code, Protocol.is_current))


def order_directly(*, patient_id, physician_id, now, start_on, code="iv-induction", preferred=NINE):
    """Plan, then confirm that plan as the views do (no commit), for the races."""
    order = series_order(patient_id=patient_id, protocol=db.session.get(Protocol, protocol_id(code)),
                         start_on=start_on, preferred_time=preferred)
    plan = series_service.plan_series(order, now=now)
    return series_service.order_series(order, confirmed=plan.code, actor=Actor(physician_id, "physician", "physician"),
                                       now=now)


def move(session, clock, day, start_time, *, chair_id=None, shift_rest=False):
    return schedule.move_session(session, chair_id=chair_id or session.chair_id, day=day, start_time=start_time,
                                 shift_rest=shift_rest, actor=COORDINATOR, now=clock())


def advance(session, clock, *targets, reason=""):
    """Walk the state machine; the gates' own checks are tested with the checklist and discharge."""
    for target in targets:
        schedule.change_status(session, target, reason=reason, actor=COORDINATOR, now=clock(), gate_passed=True)


# --------------------------------------------------------------------------------------------
# Ordering a series
# --------------------------------------------------------------------------------------------

def test_iv_induction_from_monday_books_six_sessions_mon_wed_fri_at_nine(app, clock):
    with app.app_context():
        chairs = create_chairs(3)
        series = new_series(clock)
        assert series.status == "planned"
        assert series.warnings == []
        assert series.preferred_time == "09:00"
        assert [s.sequence for s in series.sessions] == [s.number for s in series.sessions] == [1, 2, 3, 4, 5, 6]
        assert local_days(series) == [date(2026, 11, 30), date(2026, 12, 2), date(2026, 12, 4),
                                      date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 11)]
        assert {local(s.starts_at).strftime("%a %H:%M") for s in series.sessions} == \
            {"Mon 09:00", "Wed 09:00", "Fri 09:00"}
        assert {s.chair_id for s in series.sessions} == {chairs[0]}
        assert {s.status for s in series.sessions} == {"scheduled"}
        assert all(s.ends_at - s.starts_at == timedelta(minutes=120) for s in series.sessions)
        assert all(s.patient_id == series.patient_id for s in series.sessions)


def test_ordering_writes_a_series_ordered_audit_row(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock)
        (row,) = audit_rows("series.ordered")
        assert row.patient_id == series.patient_id
        assert row.object_type == "infusion_series" and row.object_id == str(series.id)
        assert '"sessions":6' in row.details.replace(" ", "")


def test_ordering_with_a_start_in_the_past_is_refused(app, clock):
    with app.app_context():
        create_chairs(1)
        with pytest.raises(BookingError) as refused:
            new_series(clock, start_on=date(2026, 11, 25))
        assert refused.value.field == "start_on"
        assert "past" in str(refused.value)
        db.session.rollback()
        assert db.session.scalar(select(func.count(InfusionSeries.id))) == 0


def test_ordering_starting_today_is_accepted(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=date(2026, 11, 26), preferred="14:00")
        assert local(series.sessions[0].starts_at) == datetime(2026, 11, 26, 14, 0, tzinfo=ZONE)


def test_ordering_without_chairs_is_refused(app, clock):
    with app.app_context():
        with pytest.raises(BookingError, match="no active chairs"):
            new_series(clock)
        db.session.rollback()
        assert db.session.scalar(select(func.count(InfusionSession.id))) == 0


def test_second_patient_at_the_same_time_gets_the_next_chair(app, clock):
    with app.app_context():
        chairs = create_chairs(3)
        first, second = new_series(clock), new_series(clock)
        assert {s.chair_id for s in first.sessions} == {chairs[0]}
        assert {s.chair_id for s in second.sessions} == {chairs[1]}
        assert [s.starts_at for s in second.sessions] == [s.starts_at for s in first.sessions]


def test_third_patient_with_chairs_full_moves_later_after_turnover(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        first = new_series(clock)
        new_series(clock)
        third = new_series(clock)
        assert local_days(third) == local_days(first)
        # Both chairs 09:00–11:00; 15 minutes of turnover: 11:15 on the first chair.
        assert {local(s.starts_at).time() for s in third.sessions} == {time(11, 15)}
        assert {s.chair_id for s in third.sessions} == {chairs[0]}
        assert all(local(s.ends_at).time() <= time(18, 0) for s in third.sessions)


def test_full_day_leaves_the_session_without_a_place_and_confirming_books_nothing(app, clock):
    with app.app_context():
        create_chairs(1)
        booked = [new_series(clock, protocol="iv-booster") for _ in range(4)]
        starts = [local(s.sessions[0].starts_at).time() for s in booked]
        assert starts == [time(9, 0), time(11, 15), time(13, 30), time(15, 45)]
        order = series_order(patient_id=create_patient(now=clock()).id, protocol=db.session.get(
            Protocol, protocol_id("iv-booster")), start_on=MONDAY)
        plan = series_service.plan_series(order, now=clock())
        (placement,) = plan.placements
        assert not plan.bookable and not placement.is_placed
        assert placement.reasons == ("No chair is free for 120 minutes on Mon 30 Nov between 08:00 and closing "
                                     "(18:00).",)
        with pytest.raises(series_service.PlanChanged):
            series_service.order_series(order, confirmed=plan.code, actor=COORDINATOR, now=clock())
        db.session.rollback()
        assert db.session.scalar(select(func.count(InfusionSession.id))) == 4


def test_preferred_time_before_opening_starts_at_opening(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="iv-booster", preferred="07:00")
        assert local(series.sessions[0].starts_at).time() == time(8, 0)


def test_esketamine_induction_has_a_review_rhythm_without_warnings(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="esketamine-induction")
        days = local_days(series)
        assert len(days) == 12 and series.warnings == []
        assert [d.strftime("%a") for d in days[:8]] == ["Mon", "Thu"] * 4
        assert all(s.ends_at - s.starts_at == timedelta(minutes=150) for s in series.sessions)


def test_a_series_crossing_daylight_saving_keeps_nine_local(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=date(2027, 3, 8))
        change = date(2027, 3, 14)
        assert local_days(series) == [date(2027, 3, 8), date(2027, 3, 10), date(2027, 3, 12),
                                      date(2027, 3, 15), date(2027, 3, 17), date(2027, 3, 19)]
        assert {local(s.starts_at).time() for s in series.sessions} == {NINE}
        before = {s.starts_at.astimezone(UTC).hour for s in series.sessions if local(s.starts_at).date() < change}
        after = {s.starts_at.astimezone(UTC).hour for s in series.sessions if local(s.starts_at).date() > change}
        assert before == {14} and after == {13}


# --------------------------------------------------------------------------------------------
# Booking one session; double booking
# --------------------------------------------------------------------------------------------

def book(series, chair_id, day, start_time, clock):
    return schedule.book_session(series_id=series.id, chair_id=chair_id, day=day, start_time=start_time,
                                 actor=COORDINATOR, now=clock())


def test_book_session_adds_the_next_sequence_and_an_audit_row(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, protocol="iv-booster")
        session = book(series, chairs[1], TUESDAY, time(13, 0), clock)
        db.session.commit()
        assert session.sequence == 2 and session.status == "scheduled"
        assert local(session.starts_at) == datetime(2026, 12, 1, 13, 0, tzinfo=ZONE)
        (row,) = audit_rows("session.booked")
        assert row.object_id == str(session.id) and row.patient_id == series.patient_id


def test_the_same_booking_sent_again_says_it_may_have_just_been_booked(app, clock):
    """After Back, or from a second tab, the form is sent again with a new key: no second session, and a
    message that says why instead of "someone may have just booked the chair"."""
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, protocol="iv-booster")
        book(series, chairs[1], TUESDAY, time(13, 0), clock)
        db.session.commit()
        with pytest.raises(BookingError, match="may have just been booked") as refused:
            book(series, chairs[1], TUESDAY, time(13, 0), clock)
        assert refused.value.field == "start_time"


def test_patient_double_booking_on_another_chair_is_refused(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, protocol="iv-booster")  # Monday 09:00–11:00 on the first chair
        with pytest.raises(BookingError, match="patient already has a session at this time") as refused:
            book(series, chairs[1], MONDAY, time(10, 0), clock)
        assert refused.value.field == "start_time"
        db.session.rollback()
        # Touching is free of overlap (the patient needs no turnover) but is a second infusion that day.
        with pytest.raises(BookingError, match="already has a session on Mon 30 Nov at 09:00") as refused:
            book(series, chairs[1], MONDAY, time(11, 0), clock)
        assert refused.value.field == "same_day_reason"


@pytest.mark.parametrize("start_time,ok", [
    (time(10, 45), False),   # overlaps
    (time(11, 0), False),    # touching, inside the 15-minute turnover
    (time(11, 14), False),   # a minute inside the turnover
    (time(11, 15), True),    # exactly the turnover
    (time(6, 45), False),    # before opening
    (time(16, 0), True),     # ends at closing
    (time(16, 1), False),    # a minute past closing
])
def test_book_session_respects_turnover_and_hours(app, clock, start_time, ok):
    with app.app_context():
        chairs = create_chairs(1)
        new_series(clock, protocol="iv-booster")  # Monday 09:00–11:00
        other = new_series(clock, protocol="iv-booster", start_on=TUESDAY)
        if ok:
            book(other, chairs[0], MONDAY, start_time, clock)
        else:
            with pytest.raises(BookingError):
                book(other, chairs[0], MONDAY, start_time, clock)


def test_booking_on_a_closed_day_is_refused(app, clock):
    with app.app_context():
        chairs = create_chairs(1)
        series = new_series(clock, protocol="iv-booster")
        with pytest.raises(BookingError, match="The clinic is closed on Saturdays.") as refused:
            book(series, chairs[0], date(2026, 12, 5), NINE, clock)
        assert refused.value.field == "day"


def test_cancelled_session_frees_its_chair(app, clock):
    with app.app_context():
        chairs = create_chairs(1)
        first = new_series(clock, protocol="iv-booster")
        advance(first.sessions[0], clock, "cancelled", reason="Patient has a cold")
        other = new_series(clock, protocol="iv-booster", start_on=TUESDAY)
        session = book(other, chairs[0], MONDAY, NINE, clock)
        db.session.commit()
        assert session.starts_at == first.sessions[0].starts_at and session.chair_id == first.sessions[0].chair_id


# --------------------------------------------------------------------------------------------
# Races: two workers book the same chair at the same time
# --------------------------------------------------------------------------------------------

def run_together(jobs):
    """Run (app, callable) jobs in threads that start together; each commits or rolls back.

    Returns one outcome per job: ("ok", result), ("BookingError", message), ("IntegrityError", message).
    """
    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def work(index, worker_app, call):
        with worker_app.app_context():
            try:
                barrier.wait(timeout=30)
                result = call()
                db.session.commit()
                outcomes[index] = ("ok", result)
            except (BookingError, IntegrityError) as error:
                db.session.rollback()
                outcomes[index] = (type(error).__name__, str(error))
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                db.session.rollback()
                outcomes[index] = ("unexpected", repr(error))
                barrier.abort()

    threads = [threading.Thread(target=work, args=(i, worker_app, call)) for i, (worker_app, call) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a booking hung"
    return outcomes


def book_id(series_id, chair_id, day, start_time, clock):
    series = db.session.get(InfusionSeries, series_id)
    return book(series, chair_id, day, start_time, clock).id


@pytest.fixture(params=["one app", "two workers"])
def worker_apps(request, app, make_app):
    return (app, app) if request.param == "one app" else (app, make_app())


@pytest.mark.fresh_db
@pytest.mark.parametrize("second_offset,allowed_refusals", [
    # Same start: the row locks should refuse it; the unique index is the last line of defence.
    (timedelta(0), {"BookingError", "IntegrityError"}),
    # Overlapping start: no index can catch it, only the locks.
    (timedelta(minutes=30), {"BookingError"}),
], ids=["same start", "overlapping start"])
def test_booking_race_lets_exactly_one_win(worker_apps, clock, second_offset, allowed_refusals):
    """Two workers book the same chair for the same afternoon, ten times over; one wins each time."""
    app = worker_apps[0]
    with app.app_context():
        (chair_id, _) = create_chairs(2)
        series_ids = [new_series(clock, protocol="iv-booster").id for _ in range(2)]
    day = TUESDAY
    for _ in range(10):
        start = time(13, 0)
        second_start = (datetime.combine(day, start) + second_offset).time()

        def booking(series_id, start_time, day=day):
            return lambda: book_id(series_id, chair_id, day, start_time, clock)

        outcomes = run_together([(worker_apps[0], booking(series_ids[0], start)),
                                 (worker_apps[1], booking(series_ids[1], second_start))])
        winners = [outcome for outcome in outcomes if outcome[0] == "ok"]
        losers = [outcome for outcome in outcomes if outcome[0] != "ok"]
        assert len(winners) == len(losers) == 1 and losers[0][0] in allowed_refusals, outcomes
        if losers[0][0] == "BookingError":
            assert "chair is already booked" in losers[0][1]
        with app.app_context():
            on_chair = [s for s in live_sessions() if s.chair_id == chair_id and local(s.starts_at).date() == day]
            assert len(on_chair) == 1
        day = next_open_day(day + timedelta(days=1), WEEKDAYS)


@pytest.mark.fresh_db
def test_ordering_race_puts_two_patients_on_different_chairs(worker_apps, clock):
    app = worker_apps[0]
    with app.app_context():
        chairs = create_chairs(2)
        physician = create_user(role="physician", username=None, password="physician passphrase", now=clock())
        patients = [create_patient(now=clock()).id for _ in range(10)]
    for round_number in range(5):
        start_on = MONDAY + timedelta(days=14 * round_number)
        pair = patients[2 * round_number: 2 * round_number + 2]

        def ordering(patient_id, start_on=start_on):
            return lambda: order_directly(patient_id=patient_id, physician_id=physician.id, now=clock(),
                                          start_on=start_on).id

        outcomes = run_together([(worker_apps[0], ordering(pair[0])), (worker_apps[1], ordering(pair[1]))])
        # Both plans may have seen the first chair free: the later confirmation finds its plan changed and
        # books nothing; confirming the new plan then takes the other chair.
        kinds = [kind for kind, _ in outcomes]
        assert set(kinds) <= {"ok", "PlanChanged"} and "ok" in kinds, outcomes
        series_ids = []
        for (kind, result), patient_id in zip(outcomes, pair, strict=True):
            if kind != "ok":
                with app.app_context():
                    result = ordering(patient_id)()
                    db.session.commit()
            series_ids.append(result)
        with app.app_context():
            sessions = [s for sid in series_ids for s in db.session.get(InfusionSeries, sid).sessions]
            assert len(sessions) == 12
            assert len({(s.chair_id, s.starts_at) for s in sessions}) == 12
            assert {s.chair_id for s in sessions} == set(chairs)
            assert {local(s.starts_at).time() for s in sessions} == {NINE}


# --------------------------------------------------------------------------------------------
# Moving sessions
# --------------------------------------------------------------------------------------------
# A series from Tuesday 1 December: Tue 1, Thu 3, Mon 7, Wed 9, Fri 11, Mon 14, 09:00 on the first chair.

TUESDAY_SERIES = [date(2026, 12, 1), date(2026, 12, 3), date(2026, 12, 7),
                  date(2026, 12, 9), date(2026, 12, 11), date(2026, 12, 14)]


def test_move_with_shift_rest_moves_the_later_sessions_by_the_same_days(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, start_on=TUESDAY)
        assert local_days(series) == TUESDAY_SERIES
        third = series.sessions[2]
        moved = move(third, clock, date(2026, 12, 9), NINE, shift_rest=True)
        db.session.commit()
        assert moved == [s.id for s in series.sessions[2:]]
        db.session.expire_all()
        assert local_days(series) == [date(2026, 12, 1), date(2026, 12, 3), date(2026, 12, 9),
                                      date(2026, 12, 11), date(2026, 12, 14), date(2026, 12, 16)]
        assert {local(s.starts_at).time() for s in series.sessions} == {NINE}
        assert {s.chair_id for s in series.sessions} == {chairs[0]}
        assert [s.sequence for s in sorted(series.sessions, key=lambda s: s.starts_at)] == [1, 2, 3, 4, 5, 6]


def test_move_with_shift_rest_when_the_target_day_is_free(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="esketamine-induction")  # Mon/Thu from Monday 30 November
        days = local_days(series)
        assert days[2:5] == [date(2026, 12, 7), date(2026, 12, 10), date(2026, 12, 14)]
        move(series.sessions[2], clock, date(2026, 12, 9), NINE, shift_rest=True)
        db.session.commit()
        db.session.expire_all()
        shifted = local_days(series)
        assert shifted[:2] == days[:2]
        assert shifted[2:5] == [date(2026, 12, 9), date(2026, 12, 14), date(2026, 12, 16)]
        assert all(a < b for a, b in zip(shifted, shifted[1:], strict=False))
        assert all(day.weekday() < 5 for day in shifted)
        assert {local(s.starts_at).time() for s in series.sessions} == {NINE}


def test_move_without_shift_rest_moves_only_that_session(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=TUESDAY)
        moved = move(series.sessions[2], clock, date(2026, 12, 8), NINE)
        db.session.commit()
        assert moved == [series.sessions[2].id]
        assert local_days(series) == [*TUESDAY_SERIES[:2], date(2026, 12, 8), *TUESDAY_SERIES[3:]]


def test_move_onto_the_patients_next_session_without_shift_is_refused(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, start_on=TUESDAY)
        with pytest.raises(BookingError, match="patient already has a session"):
            move(series.sessions[2], clock, date(2026, 12, 9), NINE, chair_id=chairs[1])


def test_move_writes_a_session_moved_audit_row(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=TUESDAY)
        third = series.sessions[2]
        move(third, clock, date(2026, 12, 8), time(10, 0))
        db.session.commit()
        (row,) = audit_rows("session.moved")
        assert row.object_id == str(third.id) and row.patient_id == series.patient_id
        assert "2026-12-07T14:00:00+00:00" in row.details and "2026-12-08T15:00:00+00:00" in row.details


@pytest.mark.parametrize("chair_index,start_time,ok", [
    (0, NINE, False),            # another patient's session on that chair
    (0, time(10, 0), False),     # overlapping it
    (0, time(11, 0), False),     # touching it: inside the turnover
    (0, time(11, 15), True),     # after the turnover
    (0, time(6, 45), False),     # before opening
    (1, NINE, True),             # another chair
])
def test_move_onto_an_occupied_chair_is_refused(app, clock, chair_index, start_time, ok):
    with app.app_context():
        chairs = create_chairs(2)
        series = new_series(clock, start_on=TUESDAY)
        other = new_series(clock, protocol="iv-booster", start_on=date(2026, 12, 8))
        assert other.sessions[0].chair_id == chairs[0]
        third = series.sessions[2]
        if ok:
            move(third, clock, date(2026, 12, 8), start_time, chair_id=chairs[chair_index])
            db.session.commit()
            assert local(third.starts_at) == datetime.combine(date(2026, 12, 8), start_time, tzinfo=ZONE)
        else:
            with pytest.raises(BookingError):
                move(third, clock, date(2026, 12, 8), start_time, chair_id=chairs[chair_index])


@pytest.mark.parametrize("day,start_time,ok", [
    (date(2026, 12, 7), time(7, 45), False),
    (date(2026, 12, 7), time(8, 0), True),      # on opening
    (date(2026, 12, 7), time(16, 0), True),     # ends on closing
    (date(2026, 12, 7), time(16, 15), False),   # ends after closing
    (date(2026, 12, 5), NINE, False),           # Saturday
    (date(2026, 12, 6), NINE, False),           # Sunday
])
def test_move_outside_clinic_hours_is_refused(app, clock, day, start_time, ok):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=TUESDAY)
        third = series.sessions[2]
        if ok:
            move(third, clock, day, start_time)
            db.session.commit()
        elif day.weekday() >= 5:
            with pytest.raises(BookingError, match=f"The clinic is closed on {day:%A}s.") as refused:
                move(third, clock, day, start_time)
            assert refused.value.field == "day"
        else:
            with pytest.raises(BookingError, match="That time is outside clinic hours: on Monday 7 Dec the clinic "
                                                   "is open 08:00–18:00, so a 120-minute session starts by 16:00.") \
                    as refused:
                move(third, clock, day, start_time)
            assert refused.value.field == "start_time"


def test_move_of_a_checked_in_session_is_refused(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=TUESDAY)
        first = series.sessions[0]
        advance(first, clock, "checked_in")
        with pytest.raises(BookingError, match="checked in cannot be moved"):
            move(first, clock, date(2026, 12, 2), NINE)


def test_move_with_shift_rest_on_a_weekly_series(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="iv-booster", planned_count=3)  # Mondays from 30 November
        move(series.sessions[1], clock, date(2026, 12, 9), NINE, shift_rest=True)
        db.session.commit()
        assert local_days(series) == [date(2026, 11, 30), date(2026, 12, 9), date(2026, 12, 16)]
        assert len(audit_rows("session.moved")) == 1


def test_move_earlier_with_shift_rest_shifts_the_rest_earlier(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="iv-booster", planned_count=3)
        move(series.sessions[1], clock, date(2026, 12, 3), time(14, 0), shift_rest=True)
        db.session.commit()
        assert local_days(series) == [date(2026, 11, 30), date(2026, 12, 3), date(2026, 12, 10)]
        # Only the moved session takes the new clock time; the others keep theirs.
        assert [local(s.starts_at).time() for s in series.sessions] == [NINE, time(14, 0), NINE]


def test_shift_rest_leaves_sessions_that_are_no_longer_scheduled(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="iv-booster", planned_count=3)  # Mon 30 Nov, 7 and 14 Dec
        first, cancelled, last = series.sessions
        advance(cancelled, clock, "cancelled", reason="Travelling")
        moved = move(first, clock, date(2026, 12, 2), NINE, shift_rest=True)
        db.session.commit()
        assert moved == [first.id, last.id]
        assert local_days(series) == [date(2026, 12, 2), date(2026, 12, 7), date(2026, 12, 16)]
        assert cancelled.status == "cancelled"


# --------------------------------------------------------------------------------------------
# Status changes and stopping a series
# --------------------------------------------------------------------------------------------

def test_check_in_makes_the_series_active_and_is_audited(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock)
        first = series.sessions[0]
        advance(first, clock, "checked_in")
        db.session.commit()
        assert first.status == "checked_in" and first.status_changed_at == clock()
        assert series.status == "active"
        (row,) = audit_rows("session.checked_in")
        assert row.object_id == str(first.id) and '"from":"scheduled"' in row.details.replace(" ", "")


@pytest.mark.parametrize("path,target", [
    ((), "infusing"),
    ((), "discharged"),
    (("checked_in",), "no_show"),
    (("checked_in", "checklist", "cleared", "infusing"), "cancelled"),
])
def test_illegal_transition_is_refused(app, clock, path, target):
    with app.app_context():
        create_chairs(1)
        session = new_series(clock).sessions[0]
        advance(session, clock, *path)
        before = session.status
        with pytest.raises(BookingError, match="cannot become"):
            advance(session, clock, target, reason="some reason")
        assert session.status == before


def test_discharged_session_is_final(app, clock):
    with app.app_context():
        create_chairs(1)
        session = new_series(clock).sessions[0]
        advance(session, clock, "checked_in", "checklist", "cleared", "infusing", "recovery", "discharged")
        with pytest.raises(BookingError, match="final"):
            advance(session, clock, "scheduled")


@pytest.mark.parametrize("target", ["cancelled", "no_show"])
@pytest.mark.parametrize("reason", ["", "   "])
def test_cancel_and_no_show_require_a_reason(app, clock, target, reason):
    with app.app_context():
        create_chairs(1)
        session = new_series(clock).sessions[0]
        with pytest.raises(BookingError) as refused:
            advance(session, clock, target, reason=reason)
        assert refused.value.field == "reason"
        assert session.status == "scheduled"


def test_cancel_keeps_the_reason(app, clock):
    with app.app_context():
        create_chairs(1)
        session = new_series(clock).sessions[0]
        advance(session, clock, "cancelled", reason="  Patient unwell  ")
        db.session.commit()
        assert session.status == "cancelled" and session.status_reason == "Patient unwell"


def test_all_sessions_discharged_or_cancelled_completes_the_series(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, planned_count=3)
        first, second, third = series.sessions
        advance(first, clock, "checked_in", "checklist", "cleared", "infusing", "recovery", "discharged")
        assert series.status == "active"
        advance(second, clock, "cancelled", reason="Unwell")
        assert series.status == "active"
        advance(third, clock, "checked_in", "checklist", "cleared", "infusing", "recovery")
        assert series.status == "active"
        advance(third, clock, "discharged")
        db.session.commit()
        assert series.status == "completed"


def test_all_sessions_cancelled_completes_a_planned_series(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, protocol="iv-booster")
        advance(series.sessions[0], clock, "cancelled", reason="Changed their mind")
        assert series.status == "completed"


def test_stop_series_cancels_the_remaining_scheduled_sessions(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock)
        first = series.sessions[0]
        advance(first, clock, "checked_in")
        series_service.stop_series(series, reason="  Adverse reaction  ", actor=COORDINATOR, now=clock())
        db.session.commit()
        assert series.status == "stopped" and series.stop_reason == "Adverse reaction"
        assert first.status == "checked_in"
        assert {s.status for s in series.sessions[1:]} == {"cancelled"}
        assert {s.status_reason for s in series.sessions[1:]} == {"Series stopped"}
        (row,) = audit_rows("series.stopped")
        assert row.object_id == str(series.id) and row.patient_id == series.patient_id
        with pytest.raises(BookingError, match="already stopped"):
            series_service.stop_series(series, reason="again", actor=COORDINATOR, now=clock())


@pytest.mark.parametrize("reason", ["", "  \n "])
def test_stop_series_needs_a_reason(app, clock, reason):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock)
        with pytest.raises(BookingError) as refused:
            series_service.stop_series(series, reason=reason, actor=COORDINATOR, now=clock())
        assert refused.value.field == "reason"
        assert series.status == "planned"
        assert {s.status for s in series.sessions} == {"scheduled"}


def test_no_booking_on_a_stopped_series(app, clock):
    with app.app_context():
        chairs = create_chairs(1)
        series = new_series(clock)
        series_service.stop_series(series, reason="Stopped by physician", actor=COORDINATOR, now=clock())
        with pytest.raises(BookingError) as refused:
            book(series, chairs[0], date(2026, 12, 15), NINE, clock)
        assert refused.value.field == "series_id"


# --------------------------------------------------------------------------------------------
# The right session on the right day: check-in only on the booked day; moving a session to today
# --------------------------------------------------------------------------------------------

TODAY = date(2026, 11, 26)
SUNDAY = date(2026, 11, 29)


def check_in(session, clock):
    schedule.change_status(session, "checked_in", reason="", actor=COORDINATOR, now=clock())


@pytest.mark.parametrize("now,allowed", [
    (at_local(MONDAY, time(0, 0)), True),
    (at_local(MONDAY, time(23, 59)), True),
    (at_local(SUNDAY, time(23, 59)), False),
    (at_local(MONDAY + timedelta(days=1), time(0, 0)), False),
])
def test_check_in_is_allowed_on_the_booked_clinic_day_only(app, clock, now, allowed):
    with app.app_context():
        create_chairs(1)
        first = new_series(clock).sessions[0]  # Monday 30 November, 09:00
        clock.now = now
        if allowed:
            check_in(first, clock)
            assert first.status == "checked_in"
        else:
            with pytest.raises(schedule.OtherDay, match="booked for Mon 30 Nov, not today. Move it to today first."):
                check_in(first, clock)
            assert first.status == "scheduled" and audit_rows("session.checked_in") == []


def test_a_gate_passed_walk_is_not_held_to_the_day(app, clock):
    """The demo seed builds past days' history through change_status with gate_passed=True."""
    with app.app_context():
        create_chairs(1)
        first = new_series(clock).sessions[0]
        advance(first, clock, "checked_in")
        assert first.status == "checked_in"


def test_move_to_today_takes_the_own_chair_at_the_next_quarter_hour_and_only_this_session(app, clock):
    with app.app_context():
        create_chairs(2)
        series = new_series(clock)
        first, rest = series.sessions[0], series.sessions[1:]
        days_before = local_days(series)[1:]
        clock.advance(minutes=7)  # 10:07
        schedule.move_to_today(first, actor=COORDINATOR, now=clock())
        db.session.commit()
        assert local(first.starts_at) == datetime(2026, 11, 26, 10, 15, tzinfo=ZONE)
        assert first.ends_at - first.starts_at == timedelta(minutes=120) and first.chair_id == rest[0].chair_id
        assert [local(s.starts_at).date() for s in rest] == days_before, "the rest of the series keeps its days"
        (row,) = audit_rows("session.moved")
        assert row.object_id == str(first.id)
        check_in(first, clock)
        assert first.status == "checked_in"


def test_move_to_today_takes_another_chair_when_its_own_is_taken_now(app, clock):
    with app.app_context():
        chair_one, chair_two = create_chairs(2)
        monday = new_series(clock).sessions[0]
        today = new_series(clock, start_on=TODAY).sessions[0]  # today 09:00–11:00 on chair one
        assert (monday.chair_id, today.chair_id) == (chair_one, chair_one)
        schedule.move_to_today(monday, actor=COORDINATOR, now=clock())
        assert (monday.chair_id, local(monday.starts_at).time()) == (chair_two, time(10, 0))


@pytest.mark.parametrize("now,message", [
    (at_local(TODAY, time(16, 1)), "120-minute session no longer fits before closing today (18:00)"),
    (at_local(date(2026, 11, 28), time(10, 0)), "The clinic is closed today"),  # Saturday
])
def test_move_to_today_refused_when_nothing_fits_today(app, clock, now, message):
    with app.app_context():
        create_chairs(1)
        first = new_series(clock).sessions[0]
        before = first.starts_at
        clock.now = now
        with pytest.raises(BookingError, match=re.escape(message)):
            schedule.move_to_today(first, actor=COORDINATOR, now=clock())
        assert first.starts_at == before


def test_move_to_today_refused_when_every_chair_is_taken(app, clock):
    with app.app_context():
        create_chairs(1)
        first = new_series(clock).sessions[0]
        for preferred in ("10:00", "12:15", "14:30"):  # from now (10:00) to 16:30: the next would end at 18:45
            new_series(clock, start_on=TODAY, preferred=preferred, planned_count=1)
        with pytest.raises(BookingError, match="No chair is free today from 10:00 to closing"):
            schedule.move_to_today(first, actor=COORDINATOR, now=clock())


def test_move_to_today_refused_for_a_session_already_today_or_checked_in(app, clock):
    with app.app_context():
        create_chairs(1)
        series = new_series(clock, start_on=TODAY)
        with pytest.raises(BookingError, match="already booked for today"):
            schedule.move_to_today(series.sessions[0], actor=COORDINATOR, now=clock())
        check_in(series.sessions[0], clock)
        with pytest.raises(BookingError, match="checked in cannot be moved"):
            schedule.move_to_today(series.sessions[0], actor=COORDINATOR, now=clock())


# --------------------------------------------------------------------------------------------
# Times are stored in UTC
# --------------------------------------------------------------------------------------------

def test_sessions_are_stored_in_utc_and_come_back_aware(app, clock):
    with app.app_context():
        create_chairs(1)
        series_id = new_series(clock).id
        db.session.remove()
        series = db.session.get(InfusionSeries, series_id)
        first = series.sessions[0]
        assert first.starts_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
        assert first.starts_at.tzinfo is UTC and first.ends_at.tzinfo is UTC
        raw = db.session.execute(text("SELECT starts_at FROM infusion_session WHERE id = :id")
                                 .columns(starts_at=DateTime()), {"id": first.id}).scalar_one()
        assert raw == datetime(2026, 11, 30, 14, 0)  # naive UTC on disk, not 09:00 local
        assert at_local(MONDAY, NINE) == first.starts_at


def test_naive_datetimes_are_refused(app, clock):
    with app.app_context():
        create_chairs(1)
        first = new_series(clock).sessions[0]
        first.starts_at = datetime(2026, 11, 30, 9, 0)
        with pytest.raises(StatementError, match="naive datetime"):
            db.session.flush()
        db.session.rollback()


def test_a_booster_gets_a_default_re_evaluation_date_from_its_protocol(app, clock):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock())
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30),
                              protocol_code="iv-booster")
        assert len(series.sessions) == 1
        assert series.reevaluate_on == date(2026, 11, 30) + timedelta(days=35)


@pytest.mark.parametrize("gated", ["cleared", "infusing", "discharged"])
def test_gated_states_cannot_be_set_by_a_bare_status_change(app, clock, gated):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock())
        session = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30)).sessions[0]
        with pytest.raises(schedule.BookingError, match="cannot be set directly"):
            schedule.change_status(session, gated, reason="", actor=COORDINATOR, now=clock())
