"""The physician's home lists every session waiting for their override, oldest first (issue 8 A2)."""
import pytest

from opsmgr.checklist import service as checklist
from opsmgr.extensions import db
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.schedule.service import change_status
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask
from tests.conftest import PASSWORD
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, order_series
from tests.sql import count_statements
from tests.test_infusion import (
    TODAY,
    clear_answers,
    discharge,
    done,
    fields,
    make_session,
    read,
    start,
    url,
    vitals,
    wait,
)


@pytest.fixture
def chairs(app):
    with app.app_context():
        return create_chairs(6)


@pytest.fixture
def recovering(app, clock, chairs, login_as):
    """Casey Chairtest's infusion ran 40 minutes with its readings and ended."""
    session_id, nurse = make_session(app, clock), login_as("nurse")
    assert done(start(nurse, session_id))
    for minute in (10, 20, 30, 40):
        clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}"))
    assert done(nurse.submit(url(session_id, "end")))
    return session_id, nurse


def checklist_needing_a_physician(app, clock, name="Robin Waitlist", chair_time="11:00"):
    """A checked-in session whose saved checklist has BP 150/95: a physician must override it."""
    with app.app_context():
        patient = create_patient(now=clock(), legal_name=name)
        patients.record_consent(db.session.get(Patient, patient.id), consent_on=TODAY, form_version="v1",
                                actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        series = order_series(patient_id=patient.id, now=clock(), start_on=TODAY, preferred_time=chair_time)
        visit = series.sessions[0]
        change_status(visit, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        checklist.fill_checklist(visit, clear_answers(clock(), systolic=150, diastolic=95), expected_version=0,
                                 actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        return visit.id


def listed(client):
    page = client.get("/signing")
    assert page.status_code == 200
    return read(page)


def test_sessions_waiting_for_an_override_are_listed_oldest_first_until_overridden(app, recovering, clock,
                                                                                  login_as):
    session_id, nurse = recovering
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    assert discharge(nurse, session_id, moaas=4).status_code == 400  # waits since now
    clock.advance(minutes=1)
    checklist_id = checklist_needing_a_physician(app, clock)
    physician = login_as("physician")
    page = listed(physician)
    assert "Waiting for your override (2)" in page
    discharge_at, checklist_at = page.index("Discharge: Casey Chairtest"), page.index("Before the dose: Robin")
    assert discharge_at < checklist_at, "oldest first"
    assert "MOAA/S" in page[discharge_at:checklist_at]
    assert "Blood pressure 150/95" in page[checklist_at:]

    override_url = url(session_id, "overrides/discharge/MENTAL_STATUS_NOT_BASELINE")
    assert done(physician.submit(override_url, fields("override-discharge-MENTAL_STATUS_NOT_BASELINE",
                                                      password=PASSWORD, reason="Baseline is 4: chronic fatigue.")))
    page = listed(physician)
    assert "Waiting for your override (1)" in page and "Discharge: Casey" not in page
    response = physician.submit(f"/sessions/{checklist_id}/checklist/override",
                                {"code": "BP_SOFT_GATE", "password": PASSWORD, "reason": "White-coat; usual reading"})
    assert response.status_code == 302, read(response)[:0]
    assert "No session is waiting for a physician's override." in listed(physician)


def test_the_waiting_list_runs_the_same_statements_for_2_and_6_sessions(app, clock, chairs, login_as):
    for number in range(2):
        checklist_needing_a_physician(app, clock, name=f"Few Waiting{number}", chair_time=f"{9 + number:02d}:00")
    physician = login_as("physician")
    with count_statements(app) as few:
        assert "Waiting for your override (2)" in listed(physician)
    for number in range(4):
        checklist_needing_a_physician(app, clock, name=f"More Waiting{number}", chair_time=f"{12 + number}:00")
    with count_statements(app) as many:
        assert "Waiting for your override (6)" in listed(physician)
    assert few["n"] == many["n"]


def test_the_physician_home_runs_the_same_statements_with_no_session_waiting_and_with_some(app, clock, chairs,
                                                                                           login_as):
    physician = login_as("physician")
    listed(physician)
    with count_statements(app) as none:
        assert "No session is waiting for a physician's override." in listed(physician)
    session_id = checklist_needing_a_physician(app, clock)
    with app.app_context():  # and an open task, whose row asks whether its patient's record is restricted
        visit = db.session.get(InfusionSession, session_id)
        db.session.add(PhysicianTask(session_id=visit.id, patient_id=visit.patient_id, code="TEST_REVIEW",
                                     kind="same_day_physician_review", message="Review today's checklist.",
                                     created_at=clock(), due_on=TODAY))
        db.session.commit()
    with count_statements(app) as one:
        page = listed(physician)
    assert "Waiting for your override (1)" in page and "Review today's checklist." in page
    assert none["n"] == one["n"]
