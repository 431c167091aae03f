"""Safe series ordering and booking (issue 9, item 4), on both backends: the two-step order (preview,
confirm the exact plan, change), overlapping series, the count limit, no booking in the past (a
physician records a past session instead), one infusion per clinic day unless a physician overrides,
holiday closures, and sessions numbered by date.

The clock starts on Thursday 2026-11-26 at 10:00 in the clinic (America/New_York); the clinic is open
Monday to Friday 08:00–18:00 with 15 minutes of chair turnover; IV chairs are held 120 minutes.
"""
import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import Actor
from opsmgr.extensions import db
from opsmgr.schedule import service as schedule
from opsmgr.schedule.models import ClinicClosure
from opsmgr.schedule.service import BookingError
from opsmgr.series import service as series_service
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession
from tests.factories import create_chairs, create_patient, create_user, order_series, series_order

ZONE = ZoneInfo("America/New_York")
MONDAY = date(2026, 11, 30)
PHYSICIAN = Actor(user_id=None, username="test-physician", role="physician")
INDUCTION_DAYS = [date(2026, 11, 30), date(2026, 12, 2), date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 9),
                  date(2026, 12, 11)]


def protocol(code):
    return db.session.scalar(select(Protocol).where(Protocol.code == code, Protocol.is_current))


def local(moment):
    return moment.astimezone(ZONE)


def actions(name):
    return [json.loads(row.details or "{}") for row in
            db.session.scalars(select(AuditEvent).where(AuditEvent.action == name).order_by(AuditEvent.id))]


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


# --- ordering: plan, confirm, change ----------------------------------------------------------------

def test_a_2330_start_is_listed_moved_to_0800_with_why_and_booked_only_as_confirmed(app, clock):
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock())
        order = series_order(patient_id=patient.id, protocol=protocol("iv-induction"), start_on=MONDAY,
                             preferred_time="23:30")
        doctor = create_user(role="physician", username=None, password="physician passphrase", now=clock())
        actor = Actor(user_id=doctor.id, username=doctor.username, role="physician")
        plan = series_service.preview_series(order, actor=actor, now=clock())
        assert [local(p.starts_at).date() for p in plan.placements] == INDUCTION_DAYS
        assert {local(p.starts_at).time() for p in plan.placements} == {time(8, 0)}
        late = "23:30 is after closing time (18:00)."
        assert [p.reasons for p in plan.placements] == [(late,)] * 3 + [
            ("The clinic is closed on Sundays.", late)] + [(late,)] * 2  # Fri + 2 days is a Sunday
        assert plan.bookable and plan.moved == 6
        assert count(InfusionSeries) == count(InfusionSession) == 0, "a preview books nothing"
        assert actions("series.previewed") == [{"protocol_id": order.protocol_id, "sessions": 6, "moved": 6,
                                                "unplaced": 0}]
        series = series_service.order_series(order, confirmed=plan.code, actor=actor, now=clock())
        db.session.commit()
        assert [(local(s.starts_at).date(), local(s.starts_at).time()) for s in series.sessions] == \
            [(day, time(8, 0)) for day in INDUCTION_DAYS]
        assert series.preferred_time == "23:30" and actions("series.ordered")[0]["moved"] == 6


def test_a_chair_taken_before_the_confirmation_shows_the_new_plan_and_books_nothing(app, clock):
    with app.app_context():
        create_chairs(1)
        order = series_order(patient_id=create_patient(now=clock()).id, protocol=protocol("iv-booster"),
                             start_on=MONDAY, preferred_time="09:00")
        seen = series_service.plan_series(order, now=clock())
        assert seen.placements[0].as_asked
        order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY,
                     protocol_code="iv-booster")  # someone else takes the chair at 09:00 meanwhile
        with pytest.raises(series_service.PlanChanged) as changed:
            series_service.order_series(order, confirmed=seen.code, actor=PHYSICIAN, now=clock())
        (placement,) = changed.value.plan.placements
        assert local(placement.starts_at).time() == time(11, 15)
        assert placement.reasons == ("Every chair is taken at 09:00 (with turnover).",)
        assert changed.value.audited
        db.session.rollback()
        assert count(InfusionSeries) == 1


def test_a_series_may_not_overlap_another_of_its_route_and_shares_no_day_with_another_route(app, clock):
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock())
        order_series(patient_id=patient.id, now=clock(), start_on=MONDAY)  # IV: 30 Nov to 11 Dec
        booster = series_order(patient_id=patient.id, protocol=protocol("iv-booster"), start_on=date(2026, 12, 11))
        with pytest.raises(BookingError, match="already has the series IV ketamine induction from Mon 30 Nov to "
                                               "Fri 11 Dec 2026") as refused:
            series_service.plan_series(booster, now=clock())
        assert refused.value.field == "start_on"
        later = series_order(patient_id=patient.id, protocol=protocol("iv-booster"), start_on=date(2026, 12, 14))
        assert series_service.plan_series(later, now=clock()).bookable
        nasal = series_order(patient_id=patient.id, protocol=protocol("esketamine-induction"),
                             start_on=date(2026, 12, 1))
        placements = series_service.plan_series(nasal, now=clock()).placements
        shared = [p for p in placements if p.asked_on in INDUCTION_DAYS]
        assert shared and all(not p.is_placed and "already has a session" in p.reasons[0] for p in shared)


def test_forty_sessions_of_a_six_session_induction_are_refused_with_the_protocols_limit(app, clock):
    with app.app_context():
        create_chairs(1)
        order = series_order(patient_id=create_patient(now=clock()).id, protocol=protocol("iv-induction"),
                             start_on=MONDAY, planned_count=40)
        with pytest.raises(BookingError, match="a 6-session protocol: a series of it plans at most 8") as refused:
            series_service.plan_series(order, now=clock())
        assert refused.value.field == "planned_count"


# --- the past, one infusion a day, numbering ----------------------------------------------------------

def test_booking_in_the_past_is_refused_and_a_physician_records_it_instead_numbered_by_date(app, clock):
    with app.app_context():
        chairs = create_chairs(1)
        series = order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY)
        values = {"series_id": series.id, "chair_id": chairs[0], "day": date(2026, 11, 25), "start_time": time(9)}
        with pytest.raises(BookingError, match=r"That time has passed \(it is 10:00 on Thu 26 Nov\)") as refused:
            schedule.book_session(**values, actor=PHYSICIAN, now=clock())
        assert refused.value.field == "day"
        with pytest.raises(BookingError, match="not past yet"):
            schedule.record_past_session(**{**values, "day": date(2026, 11, 27)}, reason="Downtime", actor=PHYSICIAN,
                                         now=clock())
        recorded = schedule.record_past_session(**values, reason="Given during the network outage", actor=PHYSICIAN,
                                                now=clock())
        db.session.commit()
        assert recorded.is_recorded_late and recorded.recorded_late_reason == "Given during the network outage"
        assert actions("session.recorded_late")[0]["same_day_override"] is False
        db.session.expire_all()
        numbers = [(s.number, s.sequence, local(s.starts_at).date()) for s in series.sessions]
        assert numbers[0] == (1, 7, date(2026, 11, 25)), "numbered by date, not by when it was entered"
        assert [n for n, _, _ in numbers] == [1, 2, 3, 4, 5, 6, 7]


def test_a_second_infusion_the_same_day_needs_a_physicians_reason_kept_and_audited(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY,
                              protocol_code="iv-booster")  # Monday 09:00–11:00
        values = {"series_id": series.id, "chair_id": chairs[1], "day": MONDAY, "start_time": time(14)}
        with pytest.raises(BookingError, match="already has a session on Mon 30 Nov at 09:00") as refused:
            schedule.book_session(**values, same_day_reason="  ", actor=PHYSICIAN, now=clock())
        assert refused.value.field == "same_day_reason"
        second = schedule.book_session(**values, same_day_reason="Split dose agreed with the patient",
                                       actor=Actor(user_id=None, username="dr", role="physician"), now=clock())
        db.session.commit()
        assert second.same_day_reason == "Split dose agreed with the patient"
        (booked,) = actions("session.booked")
        assert booked["same_day_override"] is True and "Split" not in json.dumps(booked)


def test_move_to_today_is_refused_when_the_patient_already_has_a_session_today(app, clock):
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock())
        order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 26), preferred_time="15:00",
                     protocol_code="iv-booster")
        later = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 12, 14),
                             protocol_code="iv-booster").sessions[0]
        with pytest.raises(BookingError, match="already has a session on Thu 26 Nov at 15:00"):
            schedule.move_to_today(later, actor=PHYSICIAN, now=clock())


# --- closures -----------------------------------------------------------------------------------------

def test_a_holiday_closure_is_never_booked_and_the_plan_says_why(app, clock):
    with app.app_context():
        chairs = create_chairs(1)
        db.session.add(ClinicClosure(closed_on=date(2026, 12, 2), label="Staff training",
                                     created_at=datetime(2026, 11, 1, tzinfo=UTC)))
        db.session.commit()
        order = series_order(patient_id=create_patient(now=clock()).id, protocol=protocol("iv-induction"),
                             start_on=MONDAY)
        second = series_service.plan_series(order, now=clock()).placements[1]
        assert (second.asked_on, local(second.starts_at).date()) == (date(2026, 12, 2), date(2026, 12, 3))
        assert second.reasons == ("The clinic is closed on Wed 2 Dec (Staff training).",)
        series = order_series(patient_id=order.patient_id, now=clock(), start_on=date(2026, 12, 14),
                              protocol_code="iv-booster")
        with pytest.raises(BookingError, match=r"closed on Wed 2 Dec \(Staff training\)"):
            schedule.book_session(series_id=series.id, chair_id=chairs[0], day=date(2026, 12, 2), start_time=time(9),
                                  actor=PHYSICIAN, now=clock())


def test_admin_adds_lists_and_removes_closures_audited(app, clock, login_as):
    admin = login_as("admin")
    page = admin.get("/admin/clinic/closures")
    assert page.status_code == 200 and "No closures ahead" in page.get_data(as_text=True)
    past = admin.submit("/admin/clinic/closures", {"closed_on": "2026-11-25", "label": "Too late"})
    assert past.status_code == 400 and "A closure is for today or a later day." in past.get_data(as_text=True)
    assert 'value="Too late"' in past.get_data(as_text=True), "what was typed is kept"
    added = admin.submit("/admin/clinic/closures", {"closed_on": "2026-12-25", "label": "Christmas Day"},
                         follow_redirects=True)
    assert "Fri 25 Dec 2026" in added.get_data(as_text=True) and "Christmas Day" in added.get_data(as_text=True)
    twice = admin.submit("/admin/clinic/closures", {"closed_on": "2026-12-25", "label": "Again"})
    assert twice.status_code == 400 and "is already closed (Christmas Day)" in twice.get_data(as_text=True)
    with app.app_context():
        closure_id = db.session.scalar(select(ClinicClosure.id))
    assert admin.submit(f"/admin/clinic/closures/{closure_id}/remove").status_code == 302
    with app.app_context():
        assert count(ClinicClosure) == 0
        assert actions("clinic.closure_added") == [{"closed_on": "2026-12-25", "label": "Christmas Day"}]
        assert actions("clinic.closure_removed") == [{"closed_on": "2026-12-25", "label": "Christmas Day"}]


# --- the pages ----------------------------------------------------------------------------------------

@pytest.fixture
def ordering(app, clock):
    with app.app_context():
        create_chairs(2)
        return {"patient": create_patient(now=clock(), legal_name="Pat Previewtest").id,
                "protocol": protocol("iv-induction").id}


def test_order_page_previews_then_confirms_and_change_keeps_what_was_typed(app, ordering, login_as):
    physician = login_as("physician")
    url = f"/patients/{ordering['patient']}/series/new"
    typed = {"protocol_id": ordering["protocol"], "indication": "trd", "start_on": "2026-11-30",
             "preferred_time": "23:30", "planned_count": "6"}
    preview = physician.submit(url, typed)
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Nothing is booked yet." in text
    assert text.count("23:30 is after closing time (18:00).") == 6 and "Confirm and book" in text
    with app.app_context():
        assert count(InfusionSeries) == 0
    changed = physician.submit(url, {**typed, "step": "change"}).get_data(as_text=True)
    assert 'value="23:30"' in changed and 'value="2026-11-30"' in changed and "Check the plan" in changed
    plan = text.split('name="plan" value="', 1)[1].split('"', 1)[0]
    done = physician.submit(url, {**typed, "step": "confirm", "plan": plan})
    assert done.status_code == 302
    with app.app_context():
        series = db.session.scalar(select(InfusionSeries))
        assert {local(s.starts_at).time() for s in series.sessions} == {time(8, 0)}
    detail = physician.get(done.headers["Location"]).get_data(as_text=True)
    assert "preferred time 23:30" in detail and detail.count("(not at 23:30)") == 6


def test_confirming_a_plan_that_changed_shows_the_new_plan_and_books_nothing(app, ordering, login_as):
    physician = login_as("physician")
    typed = {"protocol_id": ordering["protocol"], "indication": "trd", "start_on": "2026-11-30",
             "preferred_time": "09:00", "step": "confirm", "plan": "1@20261130T1400Z;1@20261202T1400Z"}
    response = physician.submit(f"/patients/{ordering['patient']}/series/new", typed)
    text = response.get_data(as_text=True)
    assert response.status_code == 409 and "The plan changed since you saw it" in text and "Confirm and book" in text
    with app.app_context():
        assert count(InfusionSeries) == 0 and len(actions("series.plan_changed")) == 1


def test_a_count_far_beyond_the_protocol_is_refused_at_the_field(ordering, login_as):
    response = login_as("physician").submit(f"/patients/{ordering['patient']}/series/new", {
        "protocol_id": ordering["protocol"], "indication": "trd", "start_on": "2026-11-30", "preferred_time": "09:00",
        "planned_count": "40"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "plans at most 8 sessions" in text and 'value="40"' in text


@pytest.fixture
def booked_monday(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        series = order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY,
                              protocol_code="iv-booster")
        return {"series_id": series.id, "chair_id": chairs[1]}


def test_same_day_booking_asks_a_physician_for_a_reason_and_tells_a_coordinator_who_may(app, booked_monday,
                                                                                          login_as):
    data = {**booked_monday, "day": "2026-11-30", "start_time": "14:00"}
    coordinator = login_as("coordinator").submit("/schedule/book", data).get_data(as_text=True)
    assert "need a physician&#39;s override with a reason" in coordinator and "same_day_reason" not in coordinator
    physician = login_as("physician")
    asked = physician.submit("/schedule/book", data).get_data(as_text=True)
    assert 'name="same_day_reason"' in asked and "Reason for a second infusion that day" in asked
    assert physician.submit("/schedule/book", {**data, "same_day_reason": "Split dose"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InfusionSession)
                                 .where(InfusionSession.same_day_reason == "Split dose")) == 1


def test_a_physician_records_a_past_session_from_its_own_page(app, booked_monday, login_as):
    physician = login_as("physician")
    assert "Record a past session" in physician.get("/schedule/record-past").get_data(as_text=True)
    data = {**booked_monday, "day": "2026-11-25", "start_time": "09:00"}
    refused = physician.submit("/schedule/record-past", data)
    assert refused.status_code == 200 and "Say why this session is recorded after the fact." in \
        refused.get_data(as_text=True)
    assert physician.submit("/schedule/record-past", {**data, "reason": "Paper chart only"}).status_code == 302
    booked = physician.submit("/schedule/book", data)
    assert booked.status_code == 400 and "That time has passed" in booked.get_data(as_text=True)


def test_the_schedule_offers_free_slots_only_on_open_days_from_now(app, booked_monday, login_as):
    """The clock is Thursday 26 November, 10:00 in the clinic: earlier days and hours are past, the
    closure and the weekend closed and worded so; only later free slots link to the booking form."""
    with app.app_context():
        db.session.add(ClinicClosure(closed_on=date(2026, 11, 27), label="Day after Thanksgiving",
                                     created_at=datetime(2026, 11, 1, tzinfo=UTC)))
        db.session.commit()
    coordinator = login_as("coordinator")
    week = coordinator.get("/schedule?start=2026-11-23").get_data(as_text=True)
    assert "Closed: Day after Thanksgiving" in week
    offered = set()
    for day in ("2026-11-23", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"):
        text = coordinator.get(f"/schedule?day={day}").get_data(as_text=True)
        if f"/schedule/book?chair_id={booked_monday['chair_id']}&amp;day={day}&amp;start_time=" in text:
            offered.add(day)
    assert offered == {"2026-11-26"}, "not the past, not the closure, not the weekend"
    closure = coordinator.get("/schedule?day=2026-11-27").get_data(as_text=True)
    assert "Closed: Day after Thanksgiving.</strong> Nothing can be booked on this day." in closure
    today = coordinator.get("/schedule?day=2026-11-26").get_data(as_text=True)
    assert "start_time=17:30" in today and "start_time=09:30" not in today, "from now to closing"
    assert "Closed</li>" in today or "Closed<span" in today


def test_renumbering_a_series_leaves_what_a_signature_covers_unchanged(app, clock):
    """The number is worked out by date on load: recording an earlier session renumbers the series, but
    the canonical record a physician signs holds the stored columns only, so old signatures still verify."""
    with app.app_context():
        chairs = create_chairs(1)
        series = order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY)
        second = series.sessions[1].id

        def document():
            return canonical.canonical_bytes(canonical.serialize(*canonical.load_aggregate(second)))

        before = document()
        schedule.record_past_session(series_id=series.id, chair_id=chairs[0], day=date(2026, 11, 25),
                                     start_time=time(9), reason="Paper chart only", actor=PHYSICIAN, now=clock())
        db.session.commit()
        assert db.session.get(InfusionSession, second).number == 3
        assert document() == before


def test_the_record_past_session_form_keeps_what_was_typed_and_asks_for_the_reason_at_its_field(app, clock,
                                                                                                  login_as):
    with app.app_context():
        chairs = create_chairs(1)
        series = order_series(patient_id=create_patient(now=clock()).id, now=clock(), start_on=MONDAY)
        db.session.commit()
        series_id = series.id
    physician = login_as("physician")
    values = {"series_id": series_id, "chair_id": chairs[0], "day": "2026-11-25", "start_time": "09:00"}

    refused = physician.submit("/schedule/record-past", values)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "Say why this session is recorded after the fact." in html
    assert 'value="2026-11-25"' in html and 'value="09:00"' in html, "the day and time typed are kept"
    with app.app_context():
        assert count(InfusionSession) == 6, "nothing recorded without a reason"

    recorded = physician.submit("/schedule/record-past", {**values, "reason": "Given during the network outage"})
    assert recorded.status_code == 302
    with app.app_context():
        late = db.session.scalars(select(InfusionSession)
                                  .where(InfusionSession.recorded_late_reason.is_not(None))).one()
        assert late.is_recorded_late and late.recorded_late_reason == "Given during the network outage"
        assert late.number == 1, "the session on 25 Nov comes first in the series"
        assert len(actions("session.recorded_late")) == 1
