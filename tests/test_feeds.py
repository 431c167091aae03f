"""Calendar feeds: per-user tokens, revocation, no patient names unless the clinic allows them."""
import re
from datetime import date

import pytest
from icalendar import Calendar
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.schedule.models import ClinicSetting
from tests.factories import create_chairs, create_patient, order_series


@pytest.fixture
def booked(app, clock):
    with app.app_context():
        chairs = create_chairs(2)
        patient = create_patient(now=clock(), legal_name="Jordan Feedtest")
        order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        return chairs


def issue_token(client):
    html = client.submit("/account/calendar/token").get_data(as_text=True)
    return re.search(r"clinic\.ics\?token=([A-Za-z0-9_-]+)", html).group(1)


def events(body):
    return [c for c in Calendar.from_ical(body).walk("VEVENT")]


def test_a_staff_member_subscribes_without_signing_in_and_sees_no_patient_names(app, booked, login_as):
    token = issue_token(login_as("coordinator"))
    feed = app.test_client().get(f"/calendar/clinic.ics?token={token}")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    items = events(feed.data)
    assert len(items) == 6
    assert all(str(e["summary"]).endswith("Infusion session") for e in items)
    assert b"Feedtest" not in feed.data
    with app.app_context():
        read = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "calendar.feed_read"))
        assert read.outcome == "ok" and read.role == "coordinator"


def test_patient_names_appear_only_when_the_clinic_turns_them_on(app, booked, login_as):
    token = issue_token(login_as("nurse"))
    with app.app_context():
        db.session.get(ClinicSetting, 1).ical_patient_names = True
        db.session.commit()
    assert b"Jordan Feedtest" in app.test_client().get(f"/calendar/clinic.ics?token={token}").data


def test_a_chair_feed_holds_only_that_chairs_sessions(app, booked, login_as):
    token = issue_token(login_as("nurse"))
    assert len(events(app.test_client().get(f"/calendar/chairs/{booked[0]}.ics?token={token}").data)) == 6
    assert events(app.test_client().get(f"/calendar/chairs/{booked[1]}.ics?token={token}").data) == []


@pytest.mark.parametrize("token", ["", "nonsense", "x" * 500])
def test_a_wrong_token_gets_404_and_is_audited(app, booked, token):
    assert app.test_client().get(f"/calendar/clinic.ics?token={token}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.outcome).where(AuditEvent.action == "calendar.feed_read")) == \
            "denied"


def test_revoking_or_reissuing_ends_the_old_address(app, booked, login_as):
    nurse = login_as("nurse")
    old = issue_token(nurse)
    new = issue_token(nurse)
    assert app.test_client().get(f"/calendar/clinic.ics?token={old}").status_code == 404
    assert app.test_client().get(f"/calendar/clinic.ics?token={new}").status_code == 200
    nurse.submit("/account/calendar/revoke")
    assert app.test_client().get(f"/calendar/clinic.ics?token={new}").status_code == 404


def test_a_deactivated_owner_token_stops_working(app, booked, login_as):
    nurse = login_as("nurse")
    token = issue_token(nurse)
    login_as("admin").submit(f"/admin/staff/{nurse.user.id}/deactivate")
    assert app.test_client().get(f"/calendar/clinic.ics?token={token}").status_code == 404


def test_the_token_is_shown_once_and_never_again(booked, login_as):
    nurse = login_as("nurse")
    token = issue_token(nurse)
    assert token not in nurse.get("/account/calendar").get_data(as_text=True)


def test_admins_have_no_feed(login_as):
    assert login_as("admin").get("/account/calendar").status_code == 403
