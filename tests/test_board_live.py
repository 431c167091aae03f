"""The live board and the in-chair alerts away from the chair: /today/live answers the board's fragment,
or 204 while nothing shown has changed; its polls are not the user's activity. Every physician sees an
open alert (a badge in the navigation, a list on their home) until it is acknowledged, and then who did."""
from datetime import UTC, datetime

import pytest

from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.worklists.live import state_of
from tests import test_infusion
from tests.test_infusion import acknowledge, alert_at, done, text, words

#: The infusion tests' fixtures: a session infusing since 10:00.
chairs, cleared, infusing = test_infusion.chairs, test_infusion.cleared, test_infusion.infusing

LIVE = "/today/live"


def refreshes(app):
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(action="board.refreshed").count()


def test_the_state_ignores_form_tokens_the_clock_and_the_ticking_minutes():
    one = '<input name="csrf_token" value="a"><div data-now="1"><span data-tick data-until="9">in 4 min</span>'
    two = '<input name="csrf_token" value="b"><div data-now="2"><span data-tick data-until="9">in 3 min</span>'
    assert state_of(one) == state_of(two)
    assert state_of(one) != state_of(one.replace('data-until="9"', 'data-until="8"'))


def test_the_live_board_turns_an_overdue_reading_into_words_and_polls_do_not_keep_the_sign_in(
        app, clock, infusing):
    session_id, nurse = infusing  # the dose started at 10:00
    first = nurse.get(LIVE)
    state = first.headers["X-Board-State"]
    assert first.status_code == 200 and "Next vitals: 10:10 ( in 10 min )" in words(first)
    assert "<html" not in text(first) and "Reading overdue" not in text(first)

    unchanged = nurse.get(LIVE, query_string={"since": state})
    assert unchanged.status_code == 204 and unchanged.get_data() == b""
    assert refreshes(app) == 1, "nothing shown, nothing audited"

    clock.advance(minutes=11)
    overdue = nurse.get(LIVE, query_string={"since": state})
    assert overdue.status_code == 200 and overdue.headers["X-Board-State"] != state
    assert "Reading overdue by 1 min — record vitals." in words(overdue)
    assert "Readings overdue" in words(overdue) and f"/sessions/{session_id}/infusion#vitals" in text(overdue)

    clock.advance(minutes=5)  # 16 minutes since the nurse last did anything: the polls kept nothing alive
    ended = nurse.get(LIVE, headers={"Accept": "application/json"})
    assert ended.status_code == 401


def test_every_physician_sees_an_open_alert_until_it_is_acknowledged_and_then_who_did(
        app, clock, infusing, login_as):
    session_id, nurse = infusing
    alert_id = alert_at(app, nurse, session_id, clock, 10, "10:10")
    physician = login_as("physician")

    home = physician.get("/signing")
    assert "1 unacknowledged in-chair alert" in words(home)
    assert f"/sessions/{session_id}/infusion#alert-{alert_id}-heading" in text(home)
    assert "Blood pressure alert: Casey Chairtest" in words(home)
    assert "unacknowledged in-chair alert" in words(physician.get("/patients/")), "the badge is on every page"
    assert "unacknowledged in-chair alert" not in words(nurse.get("/today")), "the badge is the physicians'"
    assert "Blood pressure alert (10:10), not acknowledged" in words(nurse.get("/today"))

    assert done(acknowledge(nurse, session_id, alert_id, "continue"))
    with app.app_context():
        name = db.session.get(StaffUser, nurse.user.id).display_name
    home = words(physician.get("/signing"))
    assert "unacknowledged in-chair alert" not in home and "alert-badge" not in home
    assert f"Acknowledged by {name} at 10:10" in home
    assert f"Acknowledged by {name} at 10:10" in words(nurse.get("/today"))
    assert f"Acknowledged by {name} at 10:10" in words(nurse.get(f"/sessions/{session_id}/infusion"))


# PostgreSQL's plan for a near-empty table is no evidence either way (it drives from whichever index is
# cheapest to start); the bench measures the same statements there at 200,000 sessions.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_open_alerts_are_found_by_index_not_among_every_alert_ever_raised(app, backend):
    """Every physician's page counts the open alerts; the count and the home's list read the alerts by
    their acknowledgement's index (years of acknowledged alerts are not read)."""
    from sqlalchemy import text as sql_text

    from opsmgr.infusion import alerts

    with app.app_context():
        since = datetime(2026, 11, 25, tzinfo=UTC)
        for query in (alerts._OPEN_COUNT, alerts.rows_query(alerts.open_or_acknowledged_since(since), order=())):
            sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
            plan = [row[-1] for row in db.session.execute(sql_text(f"EXPLAIN QUERY PLAN {sql}"))]
            assert not [step for step in plan if step.startswith("SCAN in_chair_alert")], plan
            assert [step for step in plan if "ix_in_chair_alert_acknowledged_at" in step], plan
