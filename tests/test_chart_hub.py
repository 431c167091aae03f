"""The patient chart as the hub (issue 14 §3): every series, session (status, next step), note (signature
state) and open physician task one click away; the PHQ-9/GAD-7 trend with the sessions dosed and their
mg/kg marked, one point per score; the weights taken at the checklist beside the chart's own."""
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.infusion.models import DoseRecord
from opsmgr.notes.models import SessionNote
from opsmgr.scores.models import Score
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from opsmgr.tasks.models import PhysicianTask
from tests.conftest import START
from tests.factories import create_chairs, create_patient, create_user

SVG = "{http://www.w3.org/2000/svg}"
FIRST = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
#: (status of the session, its note's status or None, mg/kg given or None)
COURSE = [("discharged", "signed", 0.5), ("discharged", "complete", 0.5), ("discharged", None, 0.75),
          ("cancelled", None, None), ("scheduled", None, None)]


def trend_points(svg):
    """The data points of the chart: the markers of its plotted lines (not the legend's, not the ticks')."""
    root = ET.fromstring(svg)  # noqa: S314 -- the app's own chart
    axes = next(g for g in root.iter(f"{SVG}g") if g.get("id", "").endswith("-axes_1"))
    return [use for group in axes.findall(f"{SVG}g") if "-line2d_" in group.get("id", "")
            for use in group.iter(f"{SVG}use")]


def signature(note_status, physician_id):
    if note_status != "signed":
        return {"signer_name": "", "signed_at": None, "signed_by_id": None}
    return {"signer_name": "Dr Hub", "signed_at": START, "signed_by_id": physician_id}


@pytest.fixture
def course(app, clock):
    """A patient with a five-session series: notes signed, complete and missing, doses, checklist weights,
    a PHQ-9 and a GAD-7 at each session that took place, and an open physician task."""
    with app.app_context():
        chair = create_chairs(1)[0]
        physician = create_user(role="physician", username="drhub", password="physician passphrase", now=clock())
        patient = create_patient(now=clock(), mrn="HUB-0001")
        protocol_id = db.session.scalar(select(Protocol.id).where(Protocol.code == "iv-induction"))
        series = InfusionSeries(patient_id=patient.id, protocol_id=protocol_id, indication="trd", planned_count=5,
                                start_on=date(2026, 11, 2), preferred_time="09:00", status="active", warnings=[],
                                ordered_by_id=physician.id, ordered_at=START)
        db.session.add(series)
        db.session.flush()
        db.session.execute(insert(InfusionSession), [
            {"series_id": series.id, "patient_id": patient.id, "chair_id": chair, "sequence": n + 1,
             "starts_at": FIRST + timedelta(days=3 * n), "ends_at": FIRST + timedelta(days=3 * n, hours=2),
             "status": status, "status_reason": "Unwell" if status == "cancelled" else None}
            for n, (status, _, _) in enumerate(COURSE)])
        sessions = db.session.scalars(select(InfusionSession).where(InfusionSession.series_id == series.id)
                                      .order_by(InfusionSession.sequence)).all()
        took_place = [(visit, note, dose) for visit, (_, note, dose) in zip(sessions, COURSE, strict=True) if dose]
        db.session.execute(insert(DoseRecord), [
            {"session_id": visit.id, "mg_per_kg": dose, "weight_kg": 70, "dose_mg": 35, "recorded_at": START}
            for visit, _, dose in took_place])
        db.session.execute(insert(ChecklistResponse), [
            {"session_id": visit.id, "weight_kg": 70 + n, "vitals_taken_at": visit.starts_at, "updated_at": START}
            for n, (visit, _, _) in enumerate(took_place)])
        db.session.execute(insert(Score), [
            {"patient_id": patient.id, "session_id": visit.id, "instrument": instrument,
             "items": [2] * (9 - n) + [0] * n if instrument == "PHQ-9" else [1] * 7, "total": total,
             "band": "moderate", "taken_at": visit.starts_at, "source": "checklist", "recorded_at": START}
            for n, (visit, _, _) in enumerate(took_place)
            for instrument, total in (("PHQ-9", 18 - 2 * n), ("GAD-7", 7))])
        db.session.execute(insert(SessionNote), [
            {"session_id": visit.id, "status": note, "created_at": START, "created_by_id": physician.id,
             "updated_at": START, "updated_by_id": physician.id, **signature(note, physician.id)}
            for visit, note, _ in took_place if note])
        db.session.execute(insert(PhysicianTask), [
            {"session_id": took_place[1][0].id, "patient_id": patient.id, "code": "PHQ9_ITEM9_POSITIVE",
             "kind": "same_day_physician_review", "message": "PHQ-9 item 9 is 1: review today.", "created_at": START,
             "due_on": date(2026, 11, 5)}])
        db.session.commit()
        return {"patient": patient.id, "sessions": [visit.id for visit in sessions],
                "task": db.session.scalar(select(PhysicianTask.id))}


def test_a_clinician_reaches_every_session_note_and_task_from_the_chart(course, login_as):
    html = login_as("physician").get(f"/patients/{course['patient']}").get_data(as_text=True)
    first, second, third, cancelled, booked = course["sessions"]
    rows = re.findall(r'<tr data-testid="chart-session">(.*?)</tr>', html, re.S)
    assert len(rows) == 5
    for row, session_id in zip(rows, course["sessions"], strict=True):
        assert f'href="/sessions/{session_id}"' in row
    # The next step in the board's words, and each note's state linked to the note.
    assert "Nothing: the session record is signed" in rows[0] and "Signed 26 Nov 2026 by Dr Hub" in rows[0]
    assert "A physician signs the note" in rows[1] and f'href="/sessions/{second}/note">Complete, not signed' in rows[1]
    assert "Write the session note" in rows[2] and f'href="/sessions/{third}/note">Write the note' in rows[2]
    assert "Cancelled (Unwell)" in rows[3] and "Check in" in rows[4] and "None yet" in rows[4]
    # The open task: its session and the physician's place to resolve it.
    tasks = html[html.index('id="tasks"'):html.index("</section>", html.index('id="tasks"'))]
    assert "PHQ-9 item 9 is 1: review today." in tasks and f'href="/sessions/{second}"' in tasks
    assert f'href="/signing#task-{course["task"]}"' in tasks
    # The weights taken at the three checklists join the chart's weights, each linked to its checklist.
    assert html.count('data-testid="checklist-weight"') == 3
    assert f'href="/sessions/{third}/checklist">At the checklist, session 3' in html


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the page, not the database
def test_the_trend_has_a_point_per_score_the_doses_and_the_response_line(course, login_as):
    html = login_as("nurse").get(f"/patients/{course['patient']}").get_data(as_text=True)
    svg = re.search(r'data-testid="chart-trend">(<svg .*?</svg>)', html, re.S).group(1)
    assert len(trend_points(svg)) == 6  # three PHQ-9 and three GAD-7
    words = {element.text for element in ET.fromstring(svg).iter() if element.text}  # noqa: S314
    assert {"0.5 mg/kg", "0.75 mg/kg", "Session", "Response ≤ 9", "Remission < 5"} <= words
    assert "3 sessions marked." in ET.fromstring(svg).find(f"{SVG}desc").text  # noqa: S314


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the page, not the database
def test_a_coordinator_sees_the_notes_state_but_not_their_content_tasks_or_weights(course, login_as):
    html = login_as("coordinator").get(f"/patients/{course['patient']}").get_data(as_text=True)
    assert "Signed 26 Nov 2026 by Dr Hub" in html and "/note" not in html
    assert 'id="tasks"' not in html and "checklist-weight" not in html and 'id="scores"' not in html
