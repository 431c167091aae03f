"""`flask demo seed`: four demo staff and a fictional clinic with patients at every stage and today's board."""
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import verify_chain
from opsmgr.auth.models import StaffUser
from opsmgr.extensions import db
from opsmgr.patients.models import Patient, PatientContraindication, PatientMedication, PatientWeight
from opsmgr.rules import scheduling
from opsmgr.rules.session_states import ACTIVE_STATES
from opsmgr.schedule import service as schedule
from opsmgr.schedule.models import Chair, ClinicDay, ClinicSetting, InfusionSession
from opsmgr.series.models import InfusionSeries

LIVE = {state.value for state in ACTIVE_STATES}
BOARD_STATES = {"scheduled", "checked_in", "infusing", "recovery", "discharged"}

#: Moments to seed at (UTC): a Thursday morning (the suite's frozen clock), a Saturday evening when
#: the clinic is closed, a Monday before opening, and the Sunday clocks go forward in New York.
MOMENTS = {
    "thursday-10:00": datetime(2026, 11, 26, 15, 0, tzinfo=UTC),
    "saturday-18:30": datetime(2026, 11, 28, 23, 30, tzinfo=UTC),
    "monday-06:00": datetime(2026, 11, 30, 11, 0, tzinfo=UTC),
    "dst-sunday-13:00": datetime(2026, 3, 8, 17, 0, tzinfo=UTC),
}


def seed(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return result.output


def snapshot(app):
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (StaffUser, Chair, Patient, PatientWeight, PatientMedication, PatientContraindication,
                              InfusionSeries, InfusionSession, AuditEvent)}


def all_series(app):
    with app.app_context():
        return db.session.scalars(select(InfusionSeries).options(
            selectinload(InfusionSeries.sessions), selectinload(InfusionSeries.protocol))
            .order_by(InfusionSeries.id)).all()


def local(app, moment):
    return schedule.as_local(moment, app.config["CLINIC_TIMEZONE"])


def test_seed_creates_the_staff_four_chairs_and_twelve_fictional_patients(app, runner):
    output = seed(runner)
    assert "Demo clinic created (all fictional): 4 chairs, 12 patients" in output
    with app.app_context():
        assert db.session.scalars(select(StaffUser.username).order_by(StaffUser.id)).all() == \
            ["nurse", "coordinator", "physician", "admin"]
        assert db.session.scalars(select(Chair.name).order_by(Chair.position)).all() == \
            ["Chair 1", "Chair 2", "Chair 3", "Window chair"]
        people = db.session.scalars(select(Patient).options(
            selectinload(Patient.weights), selectinload(Patient.medications),
            selectinload(Patient.contraindications)).order_by(Patient.mrn)).all()
        assert [p.mrn for p in people] == [f"DEMO-{n:04d}" for n in range(1, 13)]
        for person in people:
            assert "Demo-" in person.legal_name
            assert person.email.endswith("@example.org") and person.phone.startswith("(555) 555-01")
            assert len(person.weights) == 1 and 25 <= person.weights[0].kg <= 350
        assert len({p.indication for p in people}) >= 4 and len({p.sex_at_birth for p in people}) >= 2
        assert sum(bool(p.medications) for p in people) >= 10
        assert sum(bool(p.allergies) for p in people) >= 4
        assert sum(bool(p.contraindications) for p in people) >= 2
        assert sum(p.consent_on is not None for p in people) == 11


def test_seed_puts_patients_at_every_stage(app, runner):
    seed(runner)
    series = all_series(app)
    with app.app_context():
        patient_ids = set(db.session.scalars(select(Patient.id)))
    new = patient_ids - {s.patient_id for s in series}
    assert len(new) == 3

    def states(item):
        return {session.status for session in item.sessions}

    inductions = [s for s in series if s.protocol.code == "iv-induction" and s.status == "active"]
    assert len(inductions) == 3
    assert all({"discharged", "scheduled"} <= states(s) for s in inductions)
    [esketamine] = [s for s in series if s.protocol.code == "esketamine-induction"]
    assert esketamine.status == "active" and esketamine.dose_mg == 56 and esketamine.dose_mg_per_kg is None
    assert {"discharged", "scheduled"} <= states(esketamine)
    boosters = [s for s in series if s.protocol.code == "iv-booster"]
    assert len({s.patient_id for s in boosters}) == 3 and all(s.reevaluate_on for s in boosters)
    booster_patients = {s.patient_id for s in boosters}
    assert all(any(s.patient_id == p and s.protocol.code == "iv-induction" and s.status == "completed"
                   for s in series) for p in booster_patients), "a booster follows a completed induction"
    [stopped] = [s for s in series if s.status == "stopped"]
    assert "referred to primary care" in stopped.stop_reason
    assert Counter(s.status for s in stopped.sessions) == {"discharged": 2, "cancelled": 4}
    planned = [s for s in series if s.status == "planned" and s.protocol.code == "iv-induction"]
    assert len(planned) == 1 and states(planned[0]) == {"scheduled"}
    for item in series:
        assert item.ordered_by_id is not None and item.planned_count == len(item.sessions)
        assert [s.sequence for s in item.sessions] == list(range(1, len(item.sessions) + 1))


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_todays_board_is_full_whatever_the_day_and_nothing_is_double_booked(app, runner, clock, moment):
    clock.now = MOMENTS[moment]
    seed(runner)
    now = clock()
    today = local(app, now).date()
    sessions = [s for item in all_series(app) for s in item.sessions]
    board = [s for s in sessions if local(app, s.starts_at).date() == today]
    assert len(board) >= 6
    assert {s.status for s in board} >= BOARD_STATES
    assert len({s.chair_id for s in board}) == 4
    for s in sessions:
        day = local(app, s.starts_at).date()
        if day > today:
            assert s.status == "scheduled", s.status
        elif day < today:
            assert s.status in {"discharged", "cancelled"}, s.status
    assert_no_double_booking(app, sessions)
    assert_within_hours(app, [s for s in sessions if local(app, s.starts_at).date() != today])
    assert all(s.status_changed_at <= now for s in sessions if s.status_changed_at)


def assert_no_double_booking(app, sessions):
    with app.app_context():
        turnover = timedelta(minutes=db.session.get(ClinicSetting, 1).turnover_minutes)
    by_chair, by_patient = defaultdict(list), defaultdict(list)
    for s in sessions:
        if s.status in LIVE:
            by_chair[s.chair_id].append(s)
            by_patient[s.patient_id].append(s)
    for group, gap in ((by_chair, turnover), (by_patient, timedelta(0))):
        for items in group.values():
            items.sort(key=lambda s: s.starts_at)
            for before, after in zip(items, items[1:], strict=False):
                assert not scheduling.overlaps(before.starts_at, before.ends_at, after.starts_at, after.ends_at, gap), \
                    (before.starts_at, after.starts_at)


def assert_within_hours(app, sessions):
    with app.app_context():
        days = {d.weekday: d for d in db.session.scalars(select(ClinicDay))}
    for s in sessions:
        start, end = local(app, s.starts_at), local(app, s.ends_at)
        hours = days[start.weekday()]
        assert hours.is_open and hours.opens_at <= start.time() and end.time() <= hours.closes_at, start


def test_a_second_run_changes_nothing(app, runner):
    seed(runner)
    before = snapshot(app)
    assert "skipped" in seed(runner)
    assert snapshot(app) == before


def test_the_audit_chain_verifies_and_every_seeded_row_is_audited_as_the_demo_seed(app, runner):
    seed(runner)
    with app.app_context():
        assert verify_chain(app.config["AUDIT_KEY"]).ok
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert {e.username for e in events} == {"demo-seed"}
    actions = Counter(e.action for e in events)
    assert actions["staff.created"] == 4 and actions["chair.created"] == 4
    assert actions["patient.created"] == 12 and actions["series.ordered"] == 13
    assert actions["series.stopped"] == 1 and actions["session.discharged"] >= 30
    assert json.loads(events[-1].details) == {"chairs": 4, "patients": 12, "series": 13,
                                              "sessions": snapshot(app)["InfusionSession"],
                                              "sessions_today": 6}


def test_the_summary_and_credentials_are_printed(app, runner):
    output = seed(runner)
    assert re.search(r"4 chairs, 12 patients, 13 series, \d+ sessions \(6 today\)", output)
    credentials = Path(app.instance_path, "demo-credentials.txt").read_text().splitlines()[1:]
    for line in credentials:
        username, password = line.split("\t")
        assert f"  {username}  {password}" in output


def test_staff_are_seeded_but_an_existing_clinic_is_left_alone(app, runner):
    with app.app_context():
        db.session.add(Chair(name="Existing chair", position=1))
        db.session.commit()
    output = seed(runner)
    assert "the demo clinic was not added" in output
    counts = snapshot(app)
    assert (counts["StaffUser"], counts["Chair"], counts["Patient"]) == (4, 1, 0)


def test_the_admin_sees_the_demo_chairs_on_the_clinic_page(app, runner, monkeypatch):
    monkeypatch.setenv("OPSMGR_DEMO_PASSWORD", "scripted demo passphrase")
    seed(runner)
    client = app.test_client()
    assert client.login("admin", "scripted demo passphrase").status_code == 302
    page = client.get("/admin/clinic/").get_data(as_text=True)
    assert "Window chair" in page and "Chair 3" in page
