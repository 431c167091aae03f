"""The chair board, the week calendar, ordering, booking, moving and status changes through the pages."""
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from tests.factories import create_chairs, create_patient, order_series
from tests.sql import count_statements

TODAY = date(2026, 11, 26)      # Thursday; the frozen clock is 10:00 in America/New_York
MONDAY = date(2026, 11, 30)


@pytest.fixture
def clinic(app, clock):
    """Three chairs and one patient on an IV induction starting today at 11:00."""
    with app.app_context():
        chairs = create_chairs(3)
        patient = create_patient(now=clock(), legal_name="Robin Boardtest")
        series = order_series(patient_id=patient.id, now=clock(), start_on=TODAY, preferred_time="11:00")
        return {"chairs": chairs, "patient_id": patient.id, "series_id": series.id,
                "session_ids": [s.id for s in series.sessions]}


def session_row(app, session_id):
    """The session's current columns, read fresh from the database."""
    with app.app_context():
        return db.session.execute(select(InfusionSession.__table__).where(InfusionSession.id == session_id)).one()


def test_nurse_board_shows_todays_sessions_by_chair_with_status_and_next_action(app, clinic, login_as):
    page = login_as("nurse").get("/today")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Robin Boardtest" in html and "11:00" in html and "Scheduled" in html and "Check in" in html
    assert "Chair 1" in html and "Chair 3" in html


def test_nurse_checks_a_patient_in_from_the_board(app, clinic, login_as):
    nurse = login_as("nurse")
    first = clinic["session_ids"][0]
    response = nurse.submit(f"/sessions/{first}/status", {"target": "checked_in", "next": "/today"})
    assert response.status_code == 302 and response.headers["Location"] == "/today"
    assert session_row(app, first).status == "checked_in"
    with app.app_context():
        assert db.session.get(InfusionSeries, clinic["series_id"]).status == "active"


def test_an_illegal_transition_is_refused_with_a_clear_message(app, clinic, login_as):
    nurse = login_as("nurse")
    first = clinic["session_ids"][0]
    response = nurse.submit(f"/sessions/{first}/status", {"target": "checklist"})
    assert response.status_code == 400
    assert "cannot become checklist in progress" in response.get_data(as_text=True)
    assert session_row(app, first).status == "scheduled"


def test_unknown_target_state_is_a_400_not_a_500(clinic, login_as):
    response = login_as("nurse").submit(f"/sessions/{clinic['session_ids'][0]}/status", {"target": "exploded"})
    assert response.status_code == 400


def test_cancel_needs_a_reason(app, clinic, login_as):
    coordinator = login_as("coordinator")
    second = clinic["session_ids"][1]
    refused = coordinator.submit(f"/sessions/{second}/status", {"target": "cancelled", "reason": ""})
    assert refused.status_code == 400 and "Give a reason" in refused.get_data(as_text=True)
    coordinator.submit(f"/sessions/{second}/status", {"target": "cancelled", "reason": "Patient unwell"})
    assert session_row(app, second).status == "cancelled"


def test_coordinator_cannot_check_a_patient_in(app, clinic, login_as):
    response = login_as("coordinator").submit(f"/sessions/{clinic['session_ids'][0]}/status",
                                             {"target": "checked_in"})
    assert response.status_code == 403
    assert session_row(app, clinic["session_ids"][0]).status == "scheduled"


def test_the_schedule_shows_a_day_as_a_time_grid_below_the_weeks_days(clinic, login_as):
    html = login_as("coordinator").get("/schedule?start=2026-11-30").get_data(as_text=True)
    assert "Week of 30 November 2026" in html and "Monday 30 November 2026" in html
    assert html.count("Robin Boardtest") == 1, "the day's one session; the week's days give their counts"
    counts = dict(re.findall(r'data-day="([\d-]+)" data-sessions="(\d+)"', html))
    assert {day for day, count in counts.items() if count != "0"} == {"2026-11-30", "2026-12-02", "2026-12-04"}
    # Rows of 15 minutes from 08:00: the 11:00 session's block, then the chair's 15-minute turnover.
    block = re.search(r'"sched-session gr-r(\d+) gr-s(\d+)[^>]*>\s*<span class="sched-time">11:00–(\d\d):(\d\d)', html)
    row, span, end = int(block[1]), int(block[2]), int(block[3]) * 60 + int(block[4])
    assert row == 13 and span == (end - 11 * 60) // 15
    assert f'<li class="sched-turnover gr-r{row + span} gr-s1">Turnover' in html
    assert "/schedule/book?chair_id=" in html and "start_time=08:00" in html


def test_booking_finds_the_patient_by_search_then_offers_only_their_series(app, clinic, login_as):
    coordinator = login_as("coordinator")
    chair = clinic["chairs"][1]
    slot = f"chair_id={chair}&day=2026-12-01&start_time=14:00"
    found = coordinator.get(f"/schedule/book?{slot}&q=boardtest").get_data(as_text=True)
    assert "Robin Boardtest" in found and 'name="series_id"' not in found
    assert f'/schedule/book?patient_id={clinic["patient_id"]}&amp;chair_id={chair}' in found
    chosen = coordinator.get(f"/schedule/book?{slot}&patient_id={clinic['patient_id']}").get_data(as_text=True)
    assert '<select id="series_id"' not in chosen and 'type="radio"' in chosen and "0 of 6" not in chosen
    radio = re.search(r'<input[^>]*name="series_id"[^>]*>', chosen)[0]
    assert f'value="{clinic["series_id"]}"' in radio and "checked" in radio, "the one open series, chosen"
    assert "IV ketamine induction (v1) · planned · 6 of 6 planned sessions booked" in chosen
    booked = coordinator.submit("/schedule/book", {"patient_id": clinic["patient_id"], "series_id": clinic["series_id"],
                                                   "chair_id": chair, "day": "2026-12-01", "start_time": "14:00"})
    assert booked.status_code == 302 and booked.headers["Location"].endswith("/schedule?day=2026-12-01")
    assert "Robin Boardtest" in coordinator.get("/schedule?day=2026-12-01").get_data(as_text=True)
    bad = coordinator.get(f"/schedule/book?{slot}&dob=2026-02-30").get_data(as_text=True)
    assert "Not a valid date value" in bad and "Correct the search above." in bad


def test_bad_week_start_falls_back_to_this_week_with_a_message(clinic, login_as):
    page = login_as("coordinator").get("/schedule?start=2026-02-30")
    assert page.status_code == 200 and "Not a valid date value" in page.get_data(as_text=True)


def test_physician_orders_a_series_from_the_chart(app, clinic, login_as, clock):
    with app.app_context():
        patient_id = create_patient(now=clock(), legal_name="Sam Ordertest").id
        protocol_id = db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction"))
    physician = login_as("physician")
    form = physician.get(f"/patients/{patient_id}/series/new")
    assert form.status_code == 200 and "IV ketamine induction" in form.get_data(as_text=True)
    typed = {"protocol_id": protocol_id, "indication": "trd", "start_on": "2026-11-30", "preferred_time": "09:00"}
    preview = physician.submit(f"/patients/{patient_id}/series/new", typed).get_data(as_text=True)
    assert "Nothing is booked yet." in preview and "1 cannot be at the day or time you asked" in preview
    assert "The clinic is closed on Sundays." in preview, "Fri + 2 days of the rhythm moves to Monday, said why"
    plan = re.search(r'name="plan" value="([^"]+)"', preview).group(1)
    response = physician.submit(f"/patients/{patient_id}/series/new", {**typed, "step": "confirm", "plan": plan})
    assert response.status_code == 302
    with app.app_context():
        series = db.session.scalar(select(InfusionSeries).where(InfusionSeries.patient_id == patient_id))
        assert len(series.sessions) == 6 and series.dose_mg_per_kg == protocol_dose(protocol_id)
    detail = physician.get(response.headers["Location"]).get_data(as_text=True)
    assert detail.count("Scheduled") >= 6


def protocol_dose(protocol_id):
    return db.session.get(Protocol, protocol_id).dose_mg_per_kg


@pytest.mark.parametrize("fields,message", [
    ({"start_on": "2026-11-25"}, "The start date is in the past."),
    ({"start_on": "2026-02-30"}, "Enter a valid date."),
    ({"preferred_time": "25:99"}, "Enter a time."),
    ({"dose_mg": "60"}, "28, 56 or 84"),
    ({"planned_count": "0"}, "Number must be"),
])
def test_series_order_bad_input_comes_back_at_the_field(app, clinic, login_as, clock, fields, message):
    with app.app_context():
        protocol_id = db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction"))
    physician = login_as("physician")
    data = {"protocol_id": protocol_id, "indication": "trd", "start_on": "2026-11-30", "preferred_time": "09:00",
            **fields}
    response = physician.submit(f"/patients/{clinic['patient_id']}/series/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and message in html
    for value in fields.values():
        assert f'value="{value}"' in html, "what the user typed is kept"


def test_only_physicians_order_series(clinic, login_as):
    for role in ("nurse", "coordinator"):
        assert login_as(role).get(f"/patients/{clinic['patient_id']}/series/new").status_code == 403


def test_coordinator_books_a_session_by_clicking_a_free_cell(app, clinic, login_as):
    coordinator = login_as("coordinator")
    prefilled = coordinator.get(f"/schedule/book?chair_id={clinic['chairs'][1]}&day=2026-12-01")
    assert prefilled.status_code == 200 and 'value="2026-12-01"' in prefilled.get_data(as_text=True)
    response = coordinator.submit("/schedule/book", {"series_id": clinic["series_id"], "chair_id": clinic["chairs"][1],
                                                     "day": "2026-12-01", "start_time": "14:00"})
    assert response.status_code == 302
    with app.app_context():
        assert len(db.session.get(InfusionSeries, clinic["series_id"]).sessions) == 7


def test_booking_an_occupied_chair_gets_a_clear_message(app, clinic, login_as):
    coordinator = login_as("coordinator")
    taken = session_row(app, clinic["session_ids"][1])
    with app.app_context():
        other = create_patient(now=taken.starts_at, legal_name="Other Person")
        other_series_id = order_series(patient_id=other.id, now=taken.starts_at, start_on=date(2026, 12, 7),
                                       preferred_time="15:00").id
    response = coordinator.submit("/schedule/book", {"series_id": other_series_id, "chair_id": taken.chair_id,
                                                     "day": "2026-11-30", "start_time": "11:00"})
    assert response.status_code == 400
    assert "already booked" in response.get_data(as_text=True)


@pytest.mark.parametrize("day,start_time,message", [
    ("2026-12-05", "10:00", "The clinic is closed on Saturdays."),
    ("2026-12-01", "16:30", "That time is outside clinic hours: on Tuesday 1 Dec the clinic is open 08:00–18:00, "
                            "so a 120-minute session starts by 16:00."),
])
def test_booking_outside_clinic_hours_is_refused_at_the_field_saying_the_hours(clinic, login_as, day, start_time,
                                                                                message):
    response = login_as("coordinator").submit("/schedule/book", {
        "series_id": clinic["series_id"], "chair_id": clinic["chairs"][0], "day": day, "start_time": start_time})
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_coordinator_moves_the_third_session_and_shifts_the_rest(app, clinic, login_as):
    coordinator = login_as("coordinator")
    before = [session_row(app, i).starts_at for i in clinic["session_ids"]]
    third = clinic["session_ids"][2]
    response = coordinator.submit(f"/sessions/{third}/move", {
        "chair_id": clinic["chairs"][0], "day": "2026-12-04", "start_time": "11:00", "shift_rest": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    after = [session_row(app, i).starts_at for i in clinic["session_ids"]]
    assert after[:2] == before[:2]
    assert all((a - b).days >= 2 for a, b in zip(after[2:], before[2:], strict=True))
    assert after == sorted(after)
    with app.app_context():
        moved = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "session.moved"))
        assert moved.patient_id == clinic["patient_id"]


def test_a_move_onto_a_taken_chair_is_refused_and_nothing_moves(app, clinic, login_as):
    coordinator = login_as("coordinator")
    first, second = (session_row(app, i) for i in clinic["session_ids"][:2])
    local_first = first.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    response = coordinator.submit(f"/sessions/{second.id}/move", {
        "chair_id": first.chair_id, "day": local_first.date().isoformat(),
        "start_time": local_first.strftime("%H:%M")})
    assert response.status_code == 400
    assert session_row(app, second.id).starts_at == second.starts_at


def test_stopping_a_series_cancels_its_scheduled_sessions(app, clinic, login_as):
    physician = login_as("physician")
    refused = physician.submit(f"/series/{clinic['series_id']}/stop", {"reason": ""})
    assert refused.status_code == 400
    assert physician.submit(f"/series/{clinic['series_id']}/stop", {"reason": "Patient request"}).status_code == 302
    assert {session_row(app, i).status for i in clinic["session_ids"]} == {"cancelled"}




def add_patients_with_series(app, clock, count, start_on):
    with app.app_context():
        for _ in range(count):
            patient = create_patient(now=clock())
            order_series(patient_id=patient.id, now=clock(), start_on=start_on, preferred_time="08:00")


@pytest.mark.parametrize("url", ["/today", "/schedule?start=2026-11-30"])
def test_board_and_calendar_use_a_constant_number_of_statements(app, clinic, login_as, clock, url):
    nurse_or_coordinator = login_as("physician")
    nurse_or_coordinator.get(url)
    with count_statements(app) as few:
        assert nurse_or_coordinator.get(url).status_code == 200
    add_patients_with_series(app, clock, 8, TODAY)
    with count_statements(app) as many:
        html = nurse_or_coordinator.get(url).get_data(as_text=True)
    assert few["n"] == many["n"]
    assert html.count("Test Patient") >= 8


@pytest.mark.parametrize("gated", ["cleared", "infusing", "discharged"])
def test_a_crafted_post_cannot_skip_a_gate(app, clinic, login_as, gated):
    first = clinic["session_ids"][0]
    response = login_as("physician").submit(f"/sessions/{first}/status", {"target": gated})
    assert response.status_code == 400 and "cannot be set directly" in response.get_data(as_text=True)
    assert session_row(app, first).status == "scheduled"


# --- The right session on the right day ------------------------------------------------------------


@pytest.fixture
def monday_session(app, clinic, clock):
    """Sam Wrongday's first session: Monday 30 November at 09:00, four days from the frozen today."""
    with app.app_context():
        patient = create_patient(now=clock(), legal_name="Sam Wrongday")
        return order_series(patient_id=patient.id, now=clock(), start_on=MONDAY, preferred_time="09:00").sessions[0].id


def other_day_alert(html):
    found = re.search(r'<div class="alert ([^"]*)" role="(\w+)" data-testid="other-day">(.*?)</div>', html, re.S)
    assert found, "the other-day message is on the page"
    return found.group(1), found.group(2), " ".join(re.sub(r"<[^>]+>", " ", found.group(3)).split())


def audited(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_a_session_booked_for_another_day_offers_the_move_instead_of_check_in(monday_session, login_as):
    html = login_as("nurse").get(f"/sessions/{monday_session}").get_data(as_text=True)
    _, role, text = other_day_alert(html)
    assert role == "status"
    assert "This session is booked for Mon 30 Nov, not today. Move it to today first." in text
    assert "Move it to today" in text and f'action="/sessions/{monday_session}/move-to-today"' in html
    assert 'value="checked_in"' not in html, "no check-in button on another day"


def test_check_in_on_another_day_is_refused_next_to_the_move_action(app, monday_session, login_as):
    response = login_as("nurse").submit(f"/sessions/{monday_session}/status", {"target": "checked_in"})
    assert response.status_code == 400
    classes, role, text = other_day_alert(response.get_data(as_text=True))
    assert "alert-danger" in classes and role == "alert"
    assert text.startswith("This session is booked for Mon 30 Nov, not today. Move it to today first. Move it to today")
    assert session_row(app, monday_session).status == "scheduled"
    assert audited(app, "session.checked_in") == []


def test_check_in_on_the_sessions_own_day_is_allowed(app, monday_session, login_as, clock):
    clock.now = datetime(2026, 11, 30, 13, 55, tzinfo=UTC)  # 08:55 on Monday in the clinic
    nurse = login_as("nurse")
    assert 'data-testid="other-day"' not in nurse.get(f"/sessions/{monday_session}").get_data(as_text=True)
    assert nurse.submit(f"/sessions/{monday_session}/status", {"target": "checked_in"}).status_code == 302
    assert session_row(app, monday_session).status == "checked_in"


def test_move_to_today_then_check_in_works(app, clinic, monday_session, login_as):
    nurse = login_as("nurse")
    moved = nurse.submit(f"/sessions/{monday_session}/move-to-today")
    assert moved.status_code == 302 and moved.headers["Location"] == f"/sessions/{monday_session}"
    row = session_row(app, monday_session)
    assert row.starts_at.astimezone(ZoneInfo("America/New_York")) == datetime(2026, 11, 26, 10, 0,
                                                                              tzinfo=ZoneInfo("America/New_York"))
    page = nurse.get(moved.headers["Location"]).get_data(as_text=True)
    assert "Moved to today, 10:00 on Chair" in page and 'data-testid="other-day"' not in page
    [event] = audited(app, "session.moved")
    assert event.username == nurse.user.username and event.object_id == str(monday_session)
    assert nurse.submit(f"/sessions/{monday_session}/status", {"target": "checked_in"}).status_code == 302
    assert session_row(app, monday_session).status == "checked_in"


def test_move_to_today_refused_is_a_message_beside_the_button_not_a_500(app, monday_session, login_as, clock):
    clock.now = datetime(2026, 11, 26, 21, 30, tzinfo=UTC)  # 16:30 in the clinic: two hours no longer fit
    response = login_as("nurse").submit(f"/sessions/{monday_session}/move-to-today")
    assert response.status_code == 409
    classes, role, text = other_day_alert(response.get_data(as_text=True))
    assert "alert-danger" in classes and role == "alert"
    assert "Not moved: A 120-minute session no longer fits before closing today" in text
    assert session_row(app, monday_session).starts_at.date() == MONDAY


def test_only_those_who_check_in_use_move_to_today(app, monday_session, login_as):
    assert login_as("coordinator").submit(f"/sessions/{monday_session}/move-to-today").status_code == 403
    assert session_row(app, monday_session).starts_at.date() == MONDAY
    html = login_as("coordinator").get(f"/sessions/{monday_session}").get_data(as_text=True)
    assert 'data-testid="other-day"' not in html and "Move session" in html, "coordinators keep the move form"
