"""The clinic's outcome page (GET /reports/outcomes): a worked example with the counts behind each
rate, the period filter, statement counts at 10 and 1,000 sessions, who may see it. Rules:
tests/rules/test_outcomes.py."""
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select, update

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.notes.models import AdverseEvent
from opsmgr.reports.charts import outcome_bars
from opsmgr.rules.outcomes import ScoreFact, SessionFact, aggregate, series_outcome
from opsmgr.scores.models import Score
from opsmgr.sessions.models import InfusionSession
from tests.factories import create_chairs, create_patient, order_series
from tests.sql import count_statements

START_ON = date(2026, 11, 30)
SVG = "{http://www.w3.org/2000/svg}"
DAY1 = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)
SESSIONS = (SessionFact(1, DAY1, "discharged"), SessionFact(2, DAY1 + timedelta(days=7), "discharged"))


def at(days):
    return DAY1 + timedelta(days=days)


def _score_row(patient_id, session_id, total, taken_at, clock):
    items = [min(3, max(0, total - 3 * n)) for n in range(9)]
    return {"patient_id": patient_id, "session_id": session_id, "instrument": "PHQ-9", "items": items,
            "difficulty": None, "total": total, "band": "x", "taken_at": taken_at, "source": "checklist",
            "recorded_by_id": None, "recorded_at": clock()}


def _clinic(app, clock, totals):
    """One series per entry of `totals` (the PHQ-9s at its first sessions, None: not taken); those
    sessions discharged. Returns [(patient id, [session ids in date order])]."""
    with app.app_context():
        create_chairs(2)
        made, scores = [], []
        for number, series_totals in enumerate(totals):
            patient = create_patient(now=clock(), legal_name=f"Outcome Person{number}")
            series = order_series(patient_id=patient.id, now=clock(), start_on=START_ON + timedelta(days=number))
            sessions = db.session.execute(select(InfusionSession.id, InfusionSession.starts_at)
                                          .where(InfusionSession.series_id == series.id)
                                          .order_by(InfusionSession.starts_at)).all()
            held = sessions[:len(series_totals)]
            db.session.execute(update(InfusionSession).where(InfusionSession.id.in_([s.id for s in held]))
                               .values(status="discharged"))
            scores += [_score_row(patient.id, s.id, total, s.starts_at, clock)
                       for s, total in zip(held, series_totals, strict=True) if total is not None]
            made.append((patient.id, [s.id for s in sessions]))
        db.session.execute(insert(Score.__table__), scores)
        db.session.commit()
        return made


def _adverse_events(app, clock, session_ids, recorded_by_id):
    with app.app_context():
        db.session.execute(insert(AdverseEvent.__table__), [
            {"session_id": session_id, "kind": "nausea", "other_kind": "", "onset_at": clock(), "severity": "mild",
             "intervention": "", "drug_given": "", "outcome": "resolved", "alert_id": None, "recorded_at": clock(),
             "recorded_by_id": recorded_by_id} for session_id in session_ids])
        db.session.commit()


def test_outcome_page_shows_each_rate_with_its_counts(app, clock, login_as):
    """A responds at session 2 (two days on) and remits; B does not respond; C has no baseline PHQ-9; D has only
    its baseline. 1 adverse event in 9 dosed sessions."""
    made = _clinic(app, clock, [(20, 10, 4), (18, 12, 11), (None, 9), (16,)])
    physician = login_as("physician")
    _adverse_events(app, clock, [made[1][1][0]], physician.user.id)
    page = physician.get("/reports/outcomes")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('data-testid="outcome-group"') == 1
    assert 'data-testid="response">1 of 2 (50 %)<' in html and 'data-testid="remission">1 of 2 (50 %)<' in html
    assert "2 days (of 1 responding series)" in html  # Monday 30 Nov to Wednesday 2 Dec
    assert "11.1 (1 in 9 sessions)" in html
    assert "1 without a baseline PHQ-9; 1 without a later PHQ-9" in html
    assert "2026 Q4" in html and "at least 50 % below the baseline" in html and "below 5" in html
    assert 'role="img"' in html and "response 1 of 2 (50 %)" in html
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "reports.outcomes_viewed"))
    assert json.loads(event.details) == {"groups": 1, "series": 4, "filtered": False} and event.patient_id is None


def test_period_filter_and_bad_dates(app, clock, login_as):
    _clinic(app, clock, [(20, 10)])
    physician = login_as("admin")
    later = physician.get("/reports/outcomes?start=2027-01-01&end=2027-03-31").get_data(as_text=True)
    assert 'data-testid="no-series"' in later and "No series yet in this period" in later
    bad = physician.get("/reports/outcomes?start=2027-02-30&end=2026-01-01")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 200 and 'id="start-error"' in html and "Correct the dates" in html
    reversed_ = physician.get("/reports/outcomes?start=2027-01-01&end=2026-01-01").get_data(as_text=True)
    assert 'id="end-error"' in reversed_ and "The end date is before the start date." in reversed_


def test_outcome_statements_do_not_grow_with_sessions(app, clock, login_as):
    """10 sessions and 1,000 (bulk-inserted, with their PHQ-9s and adverse events): the same statements."""
    made = _clinic(app, clock, [(20, 10)])
    patient_id, sessions = made[0]
    physician = login_as("physician")
    with app.app_context():
        template = db.session.execute(select(InfusionSession.__table__).where(InfusionSession.id == sessions[0])
                                      ).mappings().one()

    def add_sessions(start, count):
        base = {key: value for key, value in template.items() if key != "id"}
        rows = [dict(base, sequence=100 + n, status="discharged",
                     starts_at=template["starts_at"] + timedelta(days=60 + n),
                     ends_at=template["ends_at"] + timedelta(days=60 + n)) for n in range(start, start + count)]
        with app.app_context():
            ids = db.session.scalars(insert(InfusionSession.__table__).returning(InfusionSession.id), rows).all()
            db.session.execute(insert(Score.__table__), [_score_row(patient_id, session_id, 9, row["starts_at"], clock)
                                                         for session_id, row in zip(ids, rows, strict=True)])
            db.session.commit()
        _adverse_events(app, clock, ids[::10], physician.user.id)

    add_sessions(0, 8)
    physician.get("/reports/outcomes")
    with count_statements(app) as few:
        assert physician.get("/reports/outcomes").status_code == 200
    add_sessions(8, 990)
    with count_statements(app) as many:
        page = physician.get("/reports/outcomes")
    assert page.status_code == 200 and "(100 in 1000 sessions)" in page.get_data(as_text=True)
    assert few["n"] == many["n"]


def test_nurses_and_coordinators_may_not_see_outcomes(app, login_as):
    assert login_as("nurse").get("/reports/outcomes").status_code == 403
    assert login_as("coordinator").get("/reports/outcomes").status_code == 403


def test_physicians_and_admins_find_the_page_from_their_home_pages(app, login_as):
    assert 'href="/reports/outcomes"' in login_as("physician").get("/signing").get_data(as_text=True)
    assert 'href="/reports/outcomes"' in login_as("admin").get("/admin/clinic/").get_data(as_text=True)


def test_outcome_chart_is_deterministic_accessible_and_safe_to_inline():
    """The chart alone (no app): same bytes for the same groups, role=img with a title and a text
    alternative carrying the counts, nothing that the CSP would block; an empty group draws no bar."""
    rows = [("IV induction", series_outcome(SESSIONS, [ScoreFact(at(0), 20, 1), ScoreFact(at(7), 9, 2)], zone=UTC),
             2, 0), ("IM", series_outcome(SESSIONS, [], zone=UTC), 2, 1)]
    groups = aggregate(rows, zone=UTC)
    svg = outcome_bars(groups)
    assert svg == outcome_bars(groups)
    root = ET.fromstring(svg)  # noqa: S314 -- the chart's own output
    desc = root.find(f"{SVG}desc").text
    assert root.get("role") == "img" and root.find(f"{SVG}title").text.startswith("Response and remission")
    assert "IV induction, 2026 Q4: response 1 of 1 (100 %), remission 0 of 1 (0 %)." in desc
    assert "IM, 2026 Q4: response no series yet" in desc
    assert not {element.tag for element in root.iter()} & {f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject"}
    assert not any("style" in element.attrib for element in root.iter())
    assert "no series yet" in svg and "1 of 1 (100 %)" in svg
