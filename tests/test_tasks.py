"""The physician task list: raised when the checklist is saved with PHQ-9 item 9 above 0 or an elevated
suicide-risk screen, listed on the physician's home page oldest first, resolved by a physician with a note.
The frozen clock starts at 10:00 clinic time on Thursday 26 November 2026."""
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import Actor
from opsmgr.extensions import db
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.rules.findings import Finding, Severity
from opsmgr.schedule import service as schedule
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks import service
from opsmgr.tasks.models import PhysicianTask
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, create_user, order_series
from tests.sql import count_statements
from tests.test_checklist_pages import CLEAR, save
from tests.test_statement_counts import add_patients

TODAY = date(2026, 11, 26)
NOTE = "Saw the patient: passive thoughts, no plan or intent. Safety plan reviewed; dose goes ahead."


@pytest.fixture
def chairs(app):
    with app.app_context():
        return create_chairs(2)


def checked_in(app, clock, name, preferred_time="11:00"):
    """A patient with consent on file, on an IV induction starting today, checked in; the session id."""
    with app.app_context():
        patient = create_patient(now=clock(), legal_name=name)
        patients.record_consent(db.session.get(Patient, patient.id), consent_on=date(2026, 11, 1),
                                form_version="v3", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        series = order_series(patient_id=patient.id, now=clock(), start_on=TODAY, preferred_time=preferred_time)
        session = series.sessions[0]
        schedule.change_status(session, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        return session.id


@pytest.fixture
def session_id(app, clock, chairs):
    return checked_in(app, clock, "Robin Taskpatient")


def tasks(app):
    with app.app_context():
        rows = db.session.scalars(select(PhysicianTask).order_by(PhysicianTask.id)).all()
        db.session.expunge_all()
        return rows


def audit(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def words(response):
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def resolve(client, task_id, note=NOTE):
    return client.submit(f"/tasks/{task_id}/resolve", {f"task{task_id}-note": note})


# --- raised from the checklist ---------------------------------------------------------------------


def test_a_saved_item9_raises_one_same_day_task_before_the_rest_of_the_phq9(app, clock, session_id, login_as):
    nurse = login_as("nurse")
    assert save(nurse, session_id, {"phq9_9": "2"}).status_code == 302
    [task] = tasks(app)
    assert (task.session_id, task.code, task.kind, task.due_on, task.created_at, task.resolved_at) == (
        session_id, "PHQ9_ITEM9_POSITIVE", "same_day_physician_review", TODAY, clock(), None)
    assert "scored 2" in task.message
    [event] = audit(app, "physician_task.raised")
    assert (event.username, event.patient_id, event.object_id) == (nurse.user.username, task.patient_id, str(task.id))
    clock.advance(minutes=5)
    assert save(nurse, session_id, {**CLEAR, "phq9_9": "3", "phq9_difficulty": "1"}).status_code == 302
    assert [t.id for t in tasks(app)] == [task.id], "one task per finding per session, however often it is saved"
    assert len(audit(app, "physician_task.raised")) == 1
    assert "This is on the physicians' task list, due today." in words(nurse.get(f"/sessions/{session_id}/checklist"))


@pytest.mark.parametrize("risk,raised", [("negative", False), ("low", False), ("moderate", True), ("high", True)])
def test_a_moderate_or_high_suicide_risk_screen_raises_a_call_the_physician_task(app, session_id, login_as,
                                                                                 risk, raised):
    assert save(login_as("nurse"), session_id, {**CLEAR, "suicide_risk": risk}).status_code == 302
    assert [(t.code, t.kind) for t in tasks(app)] == (
        [("SUICIDE_RISK_ELEVATED", "call_physician")] if raised else [])


def test_a_clear_checklist_raises_no_task(app, session_id, login_as):
    assert save(login_as("nurse"), session_id, CLEAR).status_code == 302
    assert tasks(app) == [] and audit(app, "physician_task.raised") == []


def test_raise_task_is_idempotent_per_session_and_code_even_after_it_was_resolved(app, clock, session_id, make_user):
    physician = make_user("physician")
    finding = Finding("PHQ9_ITEM9_POSITIVE", Severity.NEEDS_PHYSICIAN, "Item 9 scored 1.",
                      {"item9": 1, "task": "same_day_physician_review"})
    with app.app_context():
        session = db.session.get(InfusionSession, session_id)
        first = service.raise_task(session, finding, actor=FACTORY_ACTOR, now=clock())
        assert service.raise_task(session, finding, actor=FACTORY_ACTOR, now=clock()) is first
        service.resolve_task(first, actor=Actor(physician.id, physician.username, "physician"), note=NOTE, now=clock())
        again = service.raise_task(session, finding, actor=FACTORY_ACTOR, now=clock())
        assert again.id == first.id and again.resolved_at == clock()
        db.session.commit()
    assert len(tasks(app)) == 1 and len(audit(app, "physician_task.raised")) == 1


@pytest.mark.parametrize("now,due_on", [
    (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), date(2026, 11, 26)),   # 10:00 Thursday in the clinic
    (datetime(2026, 11, 27, 4, 59, tzinfo=UTC), date(2026, 11, 26)),   # 23:59 Thursday: already Friday in UTC
    (datetime(2026, 11, 27, 5, 0, tzinfo=UTC), date(2026, 11, 27)),    # 00:00 Friday
])
def test_a_task_is_due_on_the_clinic_day_it_was_raised_not_the_day_its_session_is_booked(app, clock, chairs,
                                                                                         now, due_on):
    finding = Finding("PHQ9_ITEM9_POSITIVE", Severity.NEEDS_PHYSICIAN, "Item 9 scored 1.",
                      {"item9": 1, "task": "same_day_physician_review"})
    with app.app_context():
        patient = create_patient(now=clock(), legal_name="Morgan Mondaypatient")
        session = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30)).sessions[0]
        [task] = service.raise_tasks(session, [finding], actor=FACTORY_ACTOR, now=now)
        assert task.due_on == due_on


def test_the_database_refuses_a_second_task_for_the_same_session_and_code(app, clock, session_id):
    with app.app_context():
        patient_id = db.session.get(InfusionSession, session_id).patient_id
        row = {"session_id": session_id, "patient_id": patient_id, "code": "PHQ9_ITEM9_POSITIVE",
               "kind": "same_day_physician_review", "message": "m", "created_at": clock(), "due_on": TODAY,
               "resolution_note": ""}
        db.session.execute(insert(PhysicianTask), [row])
        with pytest.raises(IntegrityError):
            db.session.execute(insert(PhysicianTask), [row])
        db.session.rollback()


# --- the physician's home page ---------------------------------------------------------------------


def test_the_physician_home_lists_open_tasks_oldest_first_with_patient_session_and_finding(app, clock, chairs,
                                                                                           login_as):
    later = checked_in(app, clock, "Avery Laterpatient", preferred_time="10:30")
    earlier = checked_in(app, clock, "Blake Earlierpatient", preferred_time="11:00")
    nurse = login_as("nurse")
    save(nurse, earlier, {"phq9_9": "1"})
    clock.advance(minutes=5)
    save(nurse, later, {**CLEAR, "suicide_risk": "high"})
    page = login_as("physician").get("/signing")
    text = words(page)
    assert page.status_code == 200
    assert text.index("Blake Earlierpatient") < text.index("Avery Laterpatient"), "oldest first"
    assert "Open physician tasks (2)" in text and "Notes to sign" in text
    assert "Same-day review: Blake Earlierpatient Session Thu 26 Nov 11:00 · raised 26 Nov 10:00 · due today" in text
    assert "Call the physician: Avery Laterpatient Session Thu 26 Nov 10:30 · raised 26 Nov 10:05" in text
    assert "PHQ-9 item 9 (thoughts of death or self-harm) scored 1" in text
    assert "Suicide-risk screen is high" in text
    assert "OVERDUE" not in text
    html = page.get_data(as_text=True)
    assert html.count('<h2 id="tasks-heading"') == 1 and html.count('<h2 id="to-sign-heading"') == 1
    assert f'href="/sessions/{earlier}/checklist"' in html
    viewed = audit(app, "physician_home.viewed")
    assert json.loads(viewed[-1].details) == {"open_alerts": 0, "open_tasks": 2, "unsigned_notes": 0, "waiting": 2,
                                              "reviews": 0}


def test_a_task_past_its_day_is_marked_overdue_in_words(app, clock, session_id, login_as):
    save(login_as("nurse"), session_id, {"phq9_9": "1"})
    assert "OVERDUE" not in words(login_as("physician").get("/signing"))
    clock.advance(hours=13, minutes=59)  # 23:59 in the clinic: still the same day
    assert "OVERDUE" not in words(login_as("physician").get("/signing"))
    clock.advance(minutes=2)  # 00:01 the next day
    text = words(login_as("physician").get("/signing"))
    assert "OVERDUE Same-day review: Robin Taskpatient" in text and "overdue: was due 26 Nov" in text


def test_an_empty_list_says_so(login_as):
    text = words(login_as("physician").get("/signing"))
    assert "No open tasks." in text


@pytest.mark.parametrize("role", ["nurse", "coordinator", "admin"])
def test_only_physicians_see_the_task_list(app, session_id, login_as, role):
    save(login_as("nurse"), session_id, {"phq9_9": "1"})
    page = login_as(role).get("/signing")
    assert page.status_code == 403 and "Robin Taskpatient" not in page.get_data(as_text=True)


# --- resolving -------------------------------------------------------------------------------------


@pytest.fixture
def task_id(app, session_id, login_as):
    assert save(login_as("nurse"), session_id, {"phq9_9": "1"}).status_code == 302
    return tasks(app)[0].id


def test_a_physician_resolves_a_task_with_a_note_and_it_leaves_the_list(app, clock, task_id, login_as):
    physician = login_as("physician")
    clock.advance(minutes=10)
    response = resolve(physician, task_id)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signing#tasks")
    [task] = tasks(app)
    assert (task.resolved_at, task.resolved_by_id, task.resolution_note) == (clock(), physician.user.id, NOTE)
    [event] = audit(app, "physician_task.resolved")
    assert (event.username, event.object_id, event.patient_id) == (physician.user.username, str(task_id),
                                                                   task.patient_id)
    assert NOTE not in (event.details or ""), "free text stays out of the audit trail"
    text = words(physician.get("/signing"))
    assert "The task is resolved." in text and "No open tasks." in text


def test_a_task_resolved_meanwhile_is_refused_with_a_message(app, task_id, login_as):
    first, second = login_as("physician"), login_as("physician")
    assert resolve(first, task_id).status_code == 302
    again = resolve(second, task_id, "Also saw the patient myself.")
    assert again.status_code == 400 and "already been resolved" in words(again)
    assert tasks(app)[0].resolved_by_id == first.user.id and len(audit(app, "physician_task.resolved")) == 1


@pytest.mark.parametrize("note,message", [
    ("", "This field is required."),
    ("   ", "Write what was done (at least a few words)"),
    ("ok", "Write what was done (at least a few words)"),
    ("x" * 2001, "Field cannot be longer than 2000 characters."),
    ("\x00\x01 \x02", "Write what was done (at least a few words)"),
])
def test_a_bad_note_is_an_error_at_the_field_never_a_500(app, task_id, login_as, note, message):
    response = resolve(login_as("physician"), task_id, note)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(rf'<div id="task{task_id}-note-error"[^>]*>(.*?)</div>', html, re.S)
    assert error and message in error.group(1)
    assert tasks(app)[0].resolved_at is None and audit(app, "physician_task.resolved") == []


@pytest.mark.parametrize("role", ["nurse", "coordinator", "admin"])
def test_a_direct_post_by_anyone_but_a_physician_is_refused(app, task_id, login_as, role):
    assert resolve(login_as(role), task_id).status_code == 403
    assert tasks(app)[0].resolved_at is None


@pytest.mark.parametrize("url", ["/tasks/999999/resolve", "/tasks/abc/resolve", "/tasks/-1/resolve"])
def test_an_unknown_task_is_404(login_as, url):
    assert login_as("physician").submit(url, {"task999999-note": NOTE}).status_code == 404


def test_the_service_refuses_a_resolution_by_a_non_physician(app, clock, task_id, make_user):
    nurse = make_user("nurse")
    with app.app_context():
        task = db.session.get(PhysicianTask, task_id)
        with pytest.raises(service.TaskError, match="Only a physician"):
            service.resolve_task(task, actor=Actor(nurse.id, nurse.username, "nurse"), note=NOTE, now=clock())
        db.session.rollback()


# --- constant statements ---------------------------------------------------------------------------


def add_tasks(app, first, last, clock):
    """One open task for the first session of each bulk patient first..last-1."""
    with app.app_context():
        sessions = db.session.execute(select(InfusionSession.id, InfusionSession.patient_id)
                                      .where(InfusionSession.patient_id.between(first, last - 1),
                                             InfusionSession.sequence == 1)).all()
        db.session.execute(insert(PhysicianTask), [{
            "session_id": s.id, "patient_id": s.patient_id, "code": "PHQ9_ITEM9_POSITIVE",
            "kind": "same_day_physician_review", "message": "PHQ-9 item 9 scored 1.", "resolution_note": "",
            "created_at": clock() - timedelta(days=1, minutes=s.patient_id), "due_on": TODAY - timedelta(days=1)}
            for s in sessions])
        db.session.commit()


def test_the_physician_home_runs_the_same_statements_for_3_and_60_tasks(app, clock, login_as):
    with app.app_context():
        chair_ids = create_chairs(4)
        physician_id = create_user(role="physician", username=None, password="physician passphrase", now=clock()).id
    add_patients(app, 1, 4, chair_ids, physician_id)
    add_tasks(app, 1, 4, clock)
    physician = login_as("physician")
    physician.get("/signing")
    with count_statements(app) as few:
        assert words(physician.get("/signing")).count("OVERDUE") == 3
    add_patients(app, 4, 61, chair_ids, physician_id)
    add_tasks(app, 4, 61, clock)
    with count_statements(app) as many:
        text = words(physician.get("/signing"))
    assert text.count("OVERDUE") == 60 and "Bulk Patient 60" in text
    assert few["n"] == many["n"], f"{few['n']} statements with 3 tasks, {many['n']} with 60"
