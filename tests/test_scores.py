"""One home for PHQ-9 and GAD-7 scores (issue 12 §2): the checklist keeps its scales in the score
table, a PHQ-9 taken by phone joins them and raises the same item-9 task, and migration b5d4e0f1a2c5
moves every existing checklist score (and back) without changing a signed record's hash."""
import json
from datetime import date, timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DatabaseError

from opsmgr.audit.models import AuditEvent
from opsmgr.checklist import service as checklist
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.scores import service as scores
from opsmgr.scores.models import Score
from opsmgr.sessions import record as canonical
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask
from opsmgr.tasks.service import open_tasks
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient
from tests.test_checklist_pages import CLEAR, checked, save, url
from tests.test_infusion import make_session

TODAY = date(2026, 11, 26)
BEFORE = "a4c3d9e0f1b4"
ITEM9_AT_1 = [0, 1, 0, 0, 1, 0, 0, 0, 1]


def score_rows(app):
    with app.app_context():
        return [(s.patient_id, s.session_id, s.instrument, s.items, s.difficulty, s.total, s.band, s.source,
                 s.taken_at, s.recorded_by_id) for s in db.session.scalars(select(Score).order_by(Score.id))]


def _sign(app, session_id, physician_id, now):
    """A signed note on the session (as the signing service leaves it), so the lock triggers guard it."""
    with app.app_context():
        db.session.add(SessionNote(session_id=session_id, status="signed", created_at=now, created_by_id=physician_id,
                                   updated_at=now, updated_by_id=physician_id, signed_at=now,
                                   signed_by_id=physician_id))
        db.session.commit()
        return canonical.aggregate_hash(session_id)


@pytest.mark.fresh_db
def test_the_migration_keeps_every_checklist_score_there_and_back(app, clock, make_user):
    with app.app_context():
        create_chairs(3)
    complete = make_session(app, clock)  # PHQ-9 1,1,1,1,0,0,1,0,0 (difficulty 1), GAD-7 1,1,0,0,0,0,1
    partial = make_session(app, clock, cleared=False)
    untouched = make_session(app, clock, cleared=False)
    with app.app_context():
        checklist.save_answers(db.session.get(InfusionSession, partial),
                               {"phq9_items": [2] + [None] * 8, "phq9_difficulty": 1, "systolic": 120},
                               expected_version=None, actor=FACTORY_ACTOR, now=clock())
        checklist.save_answers(db.session.get(InfusionSession, untouched), {"systolic": 120},
                               expected_version=None, actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    signed = _sign(app, complete, make_user("physician").id, clock())
    before = score_rows(app)
    assert [(row[1], row[2], row[5], row[6]) for row in before] == [
        (complete, "PHQ-9", 5, "mild"), (complete, "GAD-7", 3, "minimal"), (partial, "PHQ-9", None, None)]

    with app.app_context():
        downgrade(revision=BEFORE)
        assert "score" not in inspect(db.engine).get_table_names()
        stored = {row.session_id: row for row in db.session.execute(text(
            "SELECT session_id, phq9_items, phq9_difficulty, gad7_items FROM checklist_response"))}
        db.session.rollback()
        upgrade()
    loads = lambda value: json.loads(value) if isinstance(value, str) else value  # noqa: E731
    assert loads(stored[complete].phq9_items) == [1, 1, 1, 1, 0, 0, 1, 0, 0] and stored[complete].phq9_difficulty == 1
    assert loads(stored[complete].gad7_items) == [1, 1, 0, 0, 0, 0, 1]
    assert loads(stored[partial].phq9_items) == [2] + [None] * 8 and loads(stored[partial].gad7_items) is None
    assert loads(stored[untouched].phq9_items) is None and stored[untouched].phq9_difficulty is None

    assert score_rows(app) == before, "every score comes back as it was"
    with app.app_context():
        assert canonical.aggregate_hash(complete) == signed, "the signed record reads as it was signed"
        db.session.rollback()
        assert {c["name"] for c in inspect(db.engine).get_columns("checklist_response")}.isdisjoint(
            {"phq9_items", "phq9_difficulty", "gad7_items"})
        with pytest.raises(DatabaseError, match="signed and locked"):
            db.session.execute(text("UPDATE score SET items = '[0]' WHERE session_id = :id"), {"id": complete})
        db.session.rollback()
        with pytest.raises(DatabaseError, match="signed and locked"):
            db.session.execute(text("UPDATE checklist_response SET systolic = 1 WHERE session_id = :id"),
                               {"id": complete})
        db.session.rollback()


def test_a_phone_phq9_with_item_9_at_1_joins_the_scores_and_raises_the_physician_task(app, clock, login_as):
    with app.app_context():
        patient = create_patient(now=clock(), legal_name="Robin Phonecall")
        taken_at = clock() - timedelta(minutes=20)
        score = scores.record_score(patient, "PHQ-9", ITEM9_AT_1, difficulty=1, taken_at=taken_at, source="phone",
                                    actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        assert (score.total, score.band, score.session_id) == (3, "minimal", None)
        [task] = open_tasks(today=TODAY)
        assert (task.task.code, task.task.kind, task.task.score_id, task.task.session_id) == (
            "PHQ9_ITEM9_POSITIVE", "same_day_physician_review", score.id, None)
        assert task.score_taken_at == taken_at and task.session_starts_at is None
        assert scores.scores_for(patient.id) == (score,)
        events = {event.action: json.loads(event.details) for event in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(("score.recorded", "physician_task.raised"))))}
        assert events["score.recorded"] == {"instrument": "PHQ-9", "source": "phone", "session_id": None}
        assert events["physician_task.raised"]["score_id"] == score.id
        assert "Phonecall" not in json.dumps(list(events.values()))
    page = login_as("physician").get("/signing").get_data(as_text=True)
    assert "PHQ-9 by phone" in page and "Robin Phonecall" in page and "item 9" in page


@pytest.mark.parametrize(("items", "difficulty", "minutes", "fields"), [
    (ITEM9_AT_1[:8], 1, 0, ["items"]),
    ([0, 4, 0, 0, 0, 0, 0, 0, None], 1, 0, ["item2", "item9"]),
    (ITEM9_AT_1, None, 0, ["difficulty"]),
    (ITEM9_AT_1, 1, -5, ["taken_at"]),
])
def test_a_phone_score_with_bad_input_is_refused_at_its_fields(app, clock, items, difficulty, minutes, fields):
    with app.app_context():
        patient = create_patient(now=clock())
        with pytest.raises(DomainError) as refused:
            scores.record_score(patient, "PHQ-9", items, difficulty=difficulty, source="phone",
                                taken_at=clock() - timedelta(minutes=minutes), actor=FACTORY_ACTOR, now=clock())
        assert [problem.field for problem in refused.value.problems] == fields
        assert db.session.scalar(select(Score.id)) is None and db.session.scalar(select(PhysicianTask.id)) is None


def test_the_checklist_keeps_its_scales_in_the_score_table_and_still_raises_the_task(app, clock, login_as):
    from tests.test_tasks import checked_in

    with app.app_context():
        create_chairs(2)
    session_id = checked_in(app, clock, "Sam Checklist")
    nurse = login_as("nurse")
    assert save(nurse, session_id, {**CLEAR, "phq9_9": "1", "phq9_difficulty": "1"}).status_code == 302
    with app.app_context():
        [phq9, gad7] = db.session.scalars(select(Score).order_by(Score.instrument.desc())).all()
        assert (phq9.instrument, phq9.items[8], phq9.total, phq9.source) == ("PHQ-9", 1, 1, "checklist")
        assert (gad7.instrument, gad7.total) == ("GAD-7", 0)
        [task] = open_tasks(today=TODAY)
        assert (task.task.session_id, task.task.score_id, task.task.code) == (session_id, None, "PHQ9_ITEM9_POSITIVE")
        visit = db.session.get(InfusionSession, session_id)
        phone = scores.record_score(visit.patient, "GAD-7", [0] * 7, source="phone", taken_at=clock(),
                                    actor=FACTORY_ACTOR, now=clock() + timedelta(minutes=1))
        db.session.commit()
        assert scores.scores_for([visit.patient_id]) == (phq9, gad7, phone), "oldest first, both sources"
        # The canonical record hashes the checklist's answers from the score rows.
        first = canonical.aggregate_hash(session_id)
        response = checklist.response_for(visit, now=clock())
        assert json.loads(first[0])["checklist"]["phq9_items"] == phq9.items
        response.phq9_score.items = [*phq9.items[:8], 2]
        assert canonical.canonical_bytes(canonical.serialize(*canonical.load_aggregate(session_id))) != first[0]
        db.session.rollback()
    html = nurse.get(url(session_id)).get_data(as_text=True)  # the form reads its answers back from the scores
    assert checked(html, "phq9_9") == ["1"] and checked(html, "gad7_7") == ["0"]


def test_a_patient_with_no_scores_has_none(app, clock):
    with app.app_context():
        patient = create_patient(now=clock())
        assert scores.scores_for(patient.id) == () and scores.scores_by_patient([patient.id]) == {patient.id: ()}
        assert db.session.get(Patient, patient.id) is not None
