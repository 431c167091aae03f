"""Follow-ups planned in the transaction that makes them due, the coordinator's worklist and its actions,
and the physician's reviews (issue 12 §1, §4)."""
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.followups.models import FollowUp
from opsmgr.followups.service import replan
from opsmgr.outbox.models import OutboxMessage
from opsmgr.patients.models import Patient
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask
from tests.factories import create_chairs, create_patient, order_series
from tests.sql import count_statements

CONSENTED = {"phone": "+15035550142", "reminder_channel": "sms", "contact_consent_on": date(2026, 11, 1)}


@pytest.fixture
def booked(app, clock):
    """A consented patient (texts) with an IV induction booked from 30 Nov; returns (patient id, session ids)."""
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock(), legal_name="Rosa Quinn", **CONSENTED)
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        return patient.id, [s.id for s in series.sessions]


def items(app, patient_id, status=None):
    with app.app_context():
        query = select(FollowUp).where(FollowUp.patient_id == patient_id)
        if status:
            query = query.where(FollowUp.status == status)
        return {item.kind: (item.status, item.due_at, item.cancel_reason)
                for item in db.session.scalars(query.order_by(FollowUp.id))}


def reminders(app, session_id):
    with app.app_context():
        return {m.dedupe_key: m.status for m in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.session_id == session_id).order_by(OutboxMessage.id))}


def discharge_directly(app, session_id, at):
    """Set a session discharged (the planner reads the state; the chair pages are tested elsewhere)."""
    with app.app_context():
        visit = db.session.get(InfusionSession, session_id)
        visit.status, visit.status_changed_at = "discharged", at
        db.session.commit()


def test_booking_queues_reminders_and_moving_replaces_them(app, clock, booked):
    patient_id, sessions = booked
    first = reminders(app, sessions[0])
    assert sorted(key.split(":")[3] for key in first) == ["24h", "48h"]
    assert set(first.values()) == {"pending"}
    old_keys = set(reminders(app, sessions[1]))
    with app.app_context():
        visit = db.session.get(InfusionSession, sessions[1])
        visit.starts_at += timedelta(hours=2)
        visit.ends_at += timedelta(hours=2)
        db.session.commit()
    moved = reminders(app, sessions[1])
    assert {moved[key] for key in old_keys} == {"cancelled"}
    assert sum(1 for status in moved.values() if status == "pending") == 2


def test_cancelling_a_session_cancels_its_reminders_in_the_same_transaction(app, clock, booked):
    _, sessions = booked
    with app.app_context():
        visit = db.session.get(InfusionSession, sessions[2])
        visit.status, visit.status_changed_at = "cancelled", clock()
        db.session.commit()
    assert set(reminders(app, sessions[2]).values()) == {"cancelled"}


def test_no_consent_no_reminder(app, clock):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock(), phone="+15035550143", reminder_channel="none")
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        first = series.sessions[0].id
    assert reminders(app, first) == {}


def test_discharge_plans_next_day_and_first_session_calls_and_unsigned_note(app, clock, booked):
    patient_id, sessions = booked
    with app.app_context():
        start = db.session.get(InfusionSession, sessions[0]).starts_at
    discharge_directly(app, sessions[0], start + timedelta(hours=2))
    planned = items(app, patient_id)
    assert planned["checkin_call"][0] == "open"
    assert planned["checkin_call"][1] == start + timedelta(hours=26)
    assert planned["first_session_call"][1] == start + timedelta(hours=2 + 72)
    assert planned["unsigned_note"][0] == "open"
    with app.app_context():  # a re-plan adds nothing twice
        replan([patient_id], now=clock())
        db.session.commit()
        assert db.session.scalar(select(db.func.count()).select_from(FollowUp)) == len(planned)


def test_worklist_shows_due_calls_oldest_first_and_counts(app, clock, booked, login_as):
    patient_id, sessions = booked
    with app.app_context():
        start = db.session.get(InfusionSession, sessions[0]).starts_at
    discharge_directly(app, sessions[0], start + timedelta(hours=2))
    clock.now = start + timedelta(days=4)
    coordinator = login_as("coordinator")
    response = coordinator.get("/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Follow-up worklist" in page
    assert page.index("Next-day check-in call") < page.index("72-hour call after a first session")
    assert "Rosa Quinn" in page and "3 days overdue" in page


def test_done_with_a_phone_phq9_item9_raises_the_physician_task(app, clock, booked, login_as):
    patient_id, sessions = booked
    with app.app_context():
        start = db.session.get(InfusionSession, sessions[0]).starts_at
    discharge_directly(app, sessions[0], start + timedelta(hours=2))
    clock.now = start + timedelta(days=1, hours=3)
    with app.app_context():
        item = db.session.scalar(select(FollowUp).where(FollowUp.kind == "checkin_call"))
        item_id, version = item.id, item.version
    coordinator = login_as("coordinator")
    answers = {f"phq9_{n}": "1" for n in range(1, 10)}
    response = coordinator.submit(f"/worklist/{item_id}/done", {"version": str(version), "outcome": "Reached; tired.",
                                                                "phq9_difficulty": "1", **answers})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        item = db.session.get(FollowUp, item_id)
        assert (item.status, item.outcome) == ("done", "Reached; tired.")
        task = db.session.scalar(select(PhysicianTask).where(PhysicianTask.patient_id == patient_id))
        assert task is not None and task.score_id is not None
        assert "follow_up.done" in db.session.scalars(select(AuditEvent.action)).all()
    physician = login_as("physician")
    assert "PHQ-9 by phone" in physician.get("/signing").get_data(as_text=True)


def test_done_needs_an_outcome_and_keeps_what_was_typed(app, clock, booked, login_as):
    patient_id, sessions = booked
    discharge_directly(app, sessions[0], clock())
    with app.app_context():
        item = db.session.scalar(select(FollowUp).where(FollowUp.kind == "checkin_call"))
    coordinator = login_as("coordinator")
    response = coordinator.submit(f"/worklist/{item.id}/done", {"version": str(item.version), "outcome": "",
                                                                "phq9_1": "2"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Say what happened" in page
    assert re.search(r'<input checked[^>]*name="phq9_1"[^>]*value="2"', page)
    assert items(app, patient_id)["checkin_call"][0] == "open"


def test_three_misses_escalate_to_the_physicians_home(app, clock, booked, login_as):
    patient_id, sessions = booked
    discharge_directly(app, sessions[0], clock())
    coordinator = login_as("coordinator")
    with app.app_context():
        item_id = db.session.scalar(select(FollowUp.id).where(FollowUp.kind == "checkin_call"))
    for miss in (1, 2, 3):
        with app.app_context():
            version = db.session.get(FollowUp, item_id).version
        response = coordinator.submit(f"/worklist/{item_id}/not-reached", {"version": str(version)})
        assert response.status_code == 302
        with app.app_context():
            item = db.session.get(FollowUp, item_id)
            assert item.misses == miss
            assert item.status == ("escalated" if miss == 3 else "open")
            assert item.due_at > clock() and item.overdue_at > item.due_at
    physician = login_as("physician")
    page = physician.get("/signing").get_data(as_text=True)
    assert "Not reached 3 times." in page and "Rosa Quinn" in page


def test_escalate_needs_a_reason_and_reaches_the_physician(app, clock, booked, login_as):
    patient_id, sessions = booked
    discharge_directly(app, sessions[0], clock())
    with app.app_context():
        item = db.session.scalar(select(FollowUp).where(FollowUp.kind == "first_session_call"))
    coordinator = login_as("coordinator")
    refused = coordinator.submit(f"/worklist/{item.id}/escalate", {"version": str(item.version), "note": ""})
    assert refused.status_code == 422 and "Say why a physician" in refused.get_data(as_text=True)
    done = coordinator.submit(f"/worklist/{item.id}/escalate", {"version": str(item.version),
                                                                "note": "Asks about side effects."})
    assert done.status_code == 302
    assert "Asks about side effects." in login_as("physician").get("/signing").get_data(as_text=True)


def test_a_stale_version_changes_nothing(app, clock, booked, login_as):
    _, sessions = booked
    discharge_directly(app, sessions[0], clock())
    with app.app_context():
        item = db.session.scalar(select(FollowUp).where(FollowUp.kind == "checkin_call"))
    coordinator = login_as("coordinator")
    response = coordinator.submit(f"/worklist/{item.id}/done", {"version": str(item.version + 5),
                                                                "outcome": "Reached."})
    assert response.status_code == 422 and "A colleague changed this item" in response.get_data(as_text=True)


def test_worklist_statements_do_not_grow_with_items(app, clock, login_as):
    """10 items and 1,000 items (bulk-inserted for a few patients): the same number of statements."""
    with app.app_context():
        patients = [create_patient(now=clock(), legal_name=f"Listed Person{n}").id for n in range(5)]
    coordinator = login_as("coordinator")

    def add_items(start, count):
        rows = [{"key": f"checkin_call:test:{n}", "kind": "checkin_call", "patient_id": patients[n % 5],
                 "for_role": "coordinator", "due_at": clock() - timedelta(hours=1 + n % 50), "status": "open",
                 "misses": n % 2, "escalation_note": "", "outcome": "", "cancel_reason": "", "created_at": clock(),
                 "updated_at": clock(), "version": 1} for n in range(start, start + count)]
        with app.app_context():
            db.session.execute(insert(FollowUp.__table__), rows)
            db.session.commit()

    add_items(0, 10)
    coordinator.get("/worklist/")
    with count_statements(app) as few:
        assert coordinator.get("/worklist/").status_code == 200
    add_items(10, 990)
    with count_statements(app) as many:
        page = coordinator.get("/worklist/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('data-testid="follow-up"') == 200 and "Showing the oldest 200 of 1000" in html
    assert few["n"] == many["n"]


def test_admins_do_not_see_the_worklist(app, login_as):
    assert login_as("admin").get("/worklist/").status_code == 403
    assert login_as("nurse").get("/worklist/").status_code == 200


def test_no_message_reaches_a_patient_in_quiet_hours_even_after_an_outage(app, clock):
    """A reminder due before 20:00 that an outage held past it waits for 08:00 (clinic time); a message to
    no patient is not held."""
    from opsmgr.outbox.service import dispatch_due, enqueue_message

    night = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 21:00 on 26 Nov in New York: quiet
    with app.app_context():
        patient = create_patient(now=clock())
        enqueue_message("email", "rosa@example.org", "See you Monday.", subject="Reminder", key="quiet:patient",
                        due_at=night - timedelta(hours=3), patient_id=patient.id, now=clock())
        enqueue_message("email", "desk@example.org", "Chair 2 is out of service.", subject="Note",
                        key="quiet:staff", due_at=night - timedelta(hours=3), now=clock())
        db.session.commit()
        assert dispatch_due(night, worker_id="test") == 1
        assert dispatch_due(night.replace(hour=12, minute=59), worker_id="test") == 0  # 07:59 in New York
        statuses = dict(db.session.execute(select(OutboxMessage.dedupe_key, OutboxMessage.status)).all())
        assert statuses == {"quiet:patient": "pending", "quiet:staff": "sent"}
        db.session.rollback()
        assert dispatch_due(night.replace(hour=13), worker_id="test") == 1  # 08:00
        assert db.session.scalar(select(OutboxMessage.status).where(OutboxMessage.dedupe_key == "quiet:patient")) \
            == "sent"


def test_the_patient_filter_uses_the_patient_search(app, clock, booked, login_as):
    """Name words in any order, accents ignored, or the MRN: the same matching as the patient list."""
    patient_id, sessions = booked
    discharge_directly(app, sessions[0], clock())
    with app.app_context():
        other = create_patient(now=clock(), legal_name="Ana Núñez", phone="+15035550199")
        series = order_series(patient_id=other.id, now=clock(), start_on=date(2026, 12, 1), planned_count=1)
        visit = series.sessions[0]
        visit.status, visit.status_changed_at = "discharged", clock()
        db.session.commit()
        mrn = db.session.get(Patient, patient_id).mrn
    clock.now += timedelta(days=2)
    coordinator = login_as("coordinator")
    for term, shown, hidden in (("quinn rosa", "Rosa Quinn", "Ana Núñez"), ("nunez", "Ana Núñez", "Rosa Quinn"),
                                (mrn, "Rosa Quinn", "Ana Núñez")):
        page = coordinator.get("/worklist/", query_string={"patient": term}).get_data(as_text=True)
        items = page[page.index('id="items"'):]
        assert shown in items and hidden not in items, term


def test_the_planning_pass_reports_only_what_it_changed(app, clock, booked):
    """The scheduler logs the pass only when it did something: re-planning patients whose facts did not change
    reports nothing; a reminder missing from the outbox is queued again and counted."""
    from sqlalchemy import delete

    from opsmgr.followups.jobs import plan_followups

    _, sessions = booked
    clock.advance(days=2)  # the first session is now within the pass's horizon
    with app.app_context():
        plan_followups()
        assert not any(plan_followups().values())
        db.session.execute(delete(OutboxMessage).where(OutboxMessage.session_id == sessions[0]))
        db.session.commit()
        done = plan_followups()
    assert done["reminders queued"] >= 1 and not done["follow-ups closed"]


def test_physician_home_statements_are_the_same_with_reviews_listed(app, clock, login_as):
    """An empty home and one listing unsigned-note reviews (their note states joined in) run alike."""
    physician = login_as("physician")
    physician.get("/signing")
    with count_statements(app) as empty:
        assert physician.get("/signing").status_code == 200
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock(), legal_name="Reviewed Person")
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        db.session.execute(insert(FollowUp.__table__), [
            {"key": f"unsigned_note:test:{visit.id}", "kind": "unsigned_note", "patient_id": patient.id,
             "session_id": visit.id, "for_role": "physician", "due_at": clock() - timedelta(hours=1),
             "status": "open", "misses": 0, "escalation_note": "", "outcome": "", "cancel_reason": "",
             "created_at": clock(), "updated_at": clock(), "version": 1} for visit in series.sessions[:3]])
        db.session.commit()
    with count_statements(app) as listed:
        page = physician.get("/signing")
    assert page.get_data(as_text=True).count("Reviewed Person") >= 3
    assert empty["n"] == listed["n"]
