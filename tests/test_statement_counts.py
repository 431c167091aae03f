"""Pages run the same number of SQL statements with 10 patients and with 1,000, and every list
filter has an index behind it. Rows are bulk-inserted here: the point is the data size, not the path."""
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import insert, inspect, select, update

from opsmgr.extensions import db
from opsmgr.messaging.models import SessionConfirmation
from opsmgr.patients.models import Patient, PatientSearchWord, search_word_rows
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from tests.conftest import START
from tests.factories import create_chairs, create_user
from tests.sql import count_statements

MONDAY = date(2026, 11, 23)  # the week of the frozen clock (Thursday 26 November)




def add_patients(app, first, last, chair_ids, physician_id):
    """Patients first..last-1, each with a series and a session today and one each day this week."""
    with app.app_context():
        protocol_id = db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction"))
        db.session.execute(insert(Patient), [{
            "id": n, "mrn": f"BULK{n:05d}", "legal_name": f"Bulk Patient {n}", "search_name": f"bulk patient {n}",
            "mrn_key": f"bulk{n:05d}",
            "date_of_birth": date(1970, 1, 1) + timedelta(days=n), "sex_at_birth": "male", "indication": "trd",
            "created_at": START, "updated_at": START} for n in range(first, last)])
        db.session.execute(insert(PatientSearchWord), [
            row for n in range(first, last) for row in search_word_rows(n, f"bulk patient {n}")])
        db.session.execute(insert(InfusionSeries), [{
            "id": n, "patient_id": n, "protocol_id": protocol_id, "indication": "trd", "planned_count": 6,
            "start_on": MONDAY, "preferred_time": "09:00", "status": "active", "warnings": [],
            "ordered_by_id": physician_id, "ordered_at": START} for n in range(first, last)])
        rows = []
        for n in range(first, last):
            for day in range(7):
                starts = datetime.combine(MONDAY + timedelta(days=day), time(13, 0), tzinfo=UTC) \
                    + timedelta(seconds=n)
                rows.append({"series_id": n, "patient_id": n, "chair_id": chair_ids[n % len(chair_ids)],
                             "sequence": day + 1, "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                             "status": "scheduled"})
        db.session.execute(insert(InfusionSession), rows)
        thursdays = db.session.execute(select(InfusionSession.id, InfusionSession.starts_at).where(
            InfusionSession.patient_id >= first, InfusionSession.patient_id < last, InfusionSession.sequence == 4))
        db.session.execute(insert(SessionConfirmation), [  # each patient confirmed today's session by text
            {"session_id": row.id, "starts_at": row.starts_at, "confirmed_at": START, "via": "sms"}
            for row in thursdays])
        db.session.commit()


PAGES = ["/patients/", "/patients/?q=bulk", "/patients/1", "/today", "/schedule", "/schedule?day=2026-11-24",
         "/schedule/book?q=bulk", "/schedule/book?patient_id=1&chair_id=1&day=2026-11-27&start_time=09:00"]


@pytest.mark.parametrize("url", PAGES)
def test_page_statements_are_the_same_for_10_and_1000_patients(app, clock, login_as, url):
    with app.app_context():
        chairs = create_chairs(4)
        physician_id = create_user(role="physician", username=None, password="physician passphrase",
                                   now=clock()).id
    add_patients(app, 1, 11, chairs, physician_id)
    nurse = login_as("physician")
    nurse.get(url)
    with count_statements(app) as few:
        assert nurse.get(url).status_code == 200
    add_patients(app, 11, 1001, chairs, physician_id)
    with count_statements(app) as many:
        html = nurse.get(url).get_data(as_text=True)
    assert few["n"] == many["n"], f"{url}: {few['n']} statements with 10 patients, {many['n']} with 1,000"
    assert "Bulk Patient" in html
    if url in {"/today", "/schedule"}:  # today's sessions confirmed (the board, the schedule's today)
        assert "Confirmed by text" in html and "Not confirmed" not in html
    if url == "/schedule?day=2026-11-24":  # another day's not
        assert "Not confirmed" in html and "Confirmed by text" not in html


#: (table, column) pairs that list pages filter or sort on.
FILTERED = [
    ("patient", "search_name"), ("patient", "mrn"), ("patient", "date_of_birth"),
    ("infusion_session", "starts_at"), ("infusion_session", "chair_id"), ("infusion_session", "patient_id"),
    ("infusion_session", "series_id"), ("infusion_series", "patient_id"),
    ("audit_event", "occurred_at"), ("audit_event", "patient_id"), ("audit_event", "action"),
    ("audit_event", "user_id"), ("staff_session", "user_id"), ("patient_weight", "patient_id"),
    ("patient_medication", "patient_id"), ("patient_contraindication", "patient_id"),
]


@pytest.mark.fresh_db
def test_every_list_filter_has_an_index(app):
    with app.app_context():
        inspector = inspect(db.engine)
        missing = []
        for table, column in FILTERED:
            leading = {ix["column_names"][0] for ix in inspector.get_indexes(table)}
            leading |= {uq["column_names"][0] for uq in inspector.get_unique_constraints(table)}
            if column not in leading:
                missing.append(f"{table}.{column}")
    assert not missing, f"no index leads with: {missing}"


def test_the_series_page_statements_do_not_grow_with_its_sessions_and_scores(app, clock, login_as):
    """The series page (sessions, the PHQ-9/GAD-7 chart, the summary section) with 7 sessions and with 207."""
    from opsmgr.scores.models import Score

    with app.app_context():
        chairs = create_chairs(4)
        physician_id = create_user(role="physician", username=None, password="physician passphrase",
                                   now=clock()).id
    add_patients(app, 1, 2, chairs, physician_id)
    with app.app_context():  # one session took place, so the chart has a session and a dose to mark
        db.session.execute(update(InfusionSession).where(InfusionSession.sequence == 1).values(status="discharged"))
        db.session.commit()
    physician = login_as("physician")
    physician.get("/series/1")
    with count_statements(app) as few:
        assert physician.get("/series/1").status_code == 200
    with app.app_context():
        first = datetime.combine(MONDAY - timedelta(days=400), time(14, 0), tzinfo=UTC)
        db.session.execute(insert(InfusionSession), [
            {"series_id": 1, "patient_id": 1, "chair_id": chairs[n % len(chairs)], "sequence": 8 + n,
             "starts_at": first + timedelta(days=n), "ends_at": first + timedelta(days=n, hours=2),
             "status": "discharged"} for n in range(200)])
        ids = db.session.scalars(select(InfusionSession.id).where(InfusionSession.status == "discharged")).all()
        db.session.execute(insert(Score), [
            {"patient_id": 1, "session_id": session_id, "instrument": instrument, "items": [1] * count,
             "total": count, "band": "mild", "taken_at": first + timedelta(days=n, minutes=5), "source": "checklist",
             "recorded_at": START}
            for n, session_id in enumerate(ids) for instrument, count in (("PHQ-9", 9), ("GAD-7", 7))])
        db.session.commit()
    with count_statements(app) as many:
        html = physician.get("/series/1").get_data(as_text=True)
    assert few["n"] == many["n"], f"series page: {few['n']} statements with 7 sessions, {many['n']} with 207"
    assert html.count("<tr>") > 200 and 'data-testid="series-trend"><svg ' in html


def test_the_chart_statements_do_not_grow_with_the_patients_sessions(app, clock, login_as):
    """The chart (sessions with their next step and note, tasks, the trend with doses, checklist weights) with
    10 sessions and with 1,000, each discharged with a dose, a checklist weight, a note and a PHQ-9 and GAD-7."""
    from opsmgr.checklist.models import ChecklistResponse
    from opsmgr.infusion.models import DoseRecord
    from opsmgr.notes.models import SessionNote
    from opsmgr.scores.models import Score
    from opsmgr.tasks.models import PhysicianTask

    with app.app_context():
        chairs = create_chairs(4)
        physician_id = create_user(role="physician", username=None, password="physician passphrase",
                                   now=clock()).id
    add_patients(app, 1, 2, chairs, physician_id)

    def took_place(first_sequence, count):
        """`count` more discharged sessions of patient 1, each with its dose, checklist, note and scores."""
        with app.app_context():
            first = datetime.combine(MONDAY - timedelta(days=2000), time(14, 0), tzinfo=UTC)
            db.session.execute(insert(InfusionSession), [
                {"series_id": 1, "patient_id": 1, "chair_id": chairs[n % len(chairs)], "sequence": first_sequence + n,
                 "starts_at": first + timedelta(days=first_sequence + n),
                 "ends_at": first + timedelta(days=first_sequence + n, hours=2), "status": "discharged"}
                for n in range(count)])
            rows = db.session.execute(select(InfusionSession.id, InfusionSession.starts_at).where(
                InfusionSession.sequence >= first_sequence, InfusionSession.patient_id == 1)).all()
            db.session.execute(insert(DoseRecord), [
                {"session_id": row.id, "mg_per_kg": 0.5, "weight_kg": 70, "dose_mg": 35, "recorded_at": START}
                for row in rows])
            db.session.execute(insert(ChecklistResponse), [
                {"session_id": row.id, "weight_kg": 70.5, "updated_at": START} for row in rows])
            db.session.execute(insert(Score), [
                {"patient_id": 1, "session_id": row.id, "instrument": instrument, "items": [1] * size, "total": size,
                 "band": "mild", "taken_at": row.starts_at, "source": "checklist", "recorded_at": START}
                for row in rows for instrument, size in (("PHQ-9", 9), ("GAD-7", 7))])
            db.session.execute(insert(PhysicianTask), [
                {"session_id": row.id, "patient_id": 1, "code": "PHQ9_ITEM9_POSITIVE",
                 "kind": "same_day_physician_review", "message": "PHQ-9 item 9 is above 0.", "created_at": START,
                 "due_on": MONDAY} for row in rows[:3]])
            db.session.execute(insert(SessionNote), [
                {"session_id": row.id, "status": "signed", "created_at": START, "created_by_id": physician_id,
                 "updated_at": START, "updated_by_id": physician_id, "signed_at": START, "signed_by_id": physician_id,
                 "signer_name": "Dr Bulk"} for row in rows])
            db.session.commit()

    took_place(100, 3)  # with the 7 booked this week: 10 sessions
    physician = login_as("physician")
    physician.get("/patients/1")
    with count_statements(app) as few:
        assert physician.get("/patients/1").status_code == 200
    took_place(200, 990)
    with count_statements(app) as many:
        html = physician.get("/patients/1").get_data(as_text=True)
    assert few["n"] == many["n"], f"chart: {few['n']} statements with 10 sessions, {many['n']} with 1,000"
    assert html.count('data-testid="chart-session"') == 1000 and html.count('data-testid="checklist-weight"') == 993
    assert html.count("Signed ") >= 993 and html.count('data-testid="chart-task"') == 6
