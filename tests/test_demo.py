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
from opsmgr.audit.service import SYSTEM, verify_chain
from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.checklist import service as checklist
from opsmgr.core.clock import clinic_zone
from opsmgr.demo.service import SCORES, SIGNED_SERIES
from opsmgr.extensions import db
from opsmgr.infusion import discharge as discharge_service
from opsmgr.infusion import dose as dose_service
from opsmgr.infusion import page as page_service
from opsmgr.infusion import vitals as vitals_service
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient, PatientContraindication, PatientMedication, PatientWeight
from opsmgr.reports.outcomes import outcome_report
from opsmgr.rules import dosing, scheduling
from opsmgr.rules.findings import Outcome, outcome_of
from opsmgr.rules.session_states import ACTIVE_STATES
from opsmgr.schedule import service as schedule
from opsmgr.schedule.models import Chair, ClinicDay, ClinicSetting
from opsmgr.series.models import InfusionSeries, Protocol
from opsmgr.sessions.models import InfusionSession
from opsmgr.sessions.service import load_session
from tests.conftest import DEMO_PASSWORD, START

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
#: Today's demo sessions at the chair (demo.service.BOARD), by patient.
DISCHARGED, RECOVERY, INFUSING, CLEARED = "DEMO-0004", "DEMO-0008", "DEMO-0005", "DEMO-0007"
#: What the seed does as the demo nurse at the chair (demo.chair); everything else is the demo seed's.
CHAIR_ACTIONS = {"session.checked_in", "checklist.saved", "session.checklist", "session.cleared", "dose.started",
                 "session.infusing", "controlled_substance.recorded", "vitals.recorded", "infusion.ended",
                 "session.recovery", "discharge.recorded", "session.discharged"}


# Most tests read or extend the clinic `flask demo seed` leaves at START, seeded once per worker and
# backend (the demo_clinic fixture, with OPSMGR_DEMO_PASSWORD=DEMO_PASSWORD); the others seed their own.


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


def test_seed_creates_the_staff_four_chairs_and_twelve_fictional_patients(demo_clinic):
    app, output = demo_clinic.app, demo_clinic.data["output"]
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
            assert person.email.endswith("@example.org") and person.phone.startswith("+150355501")
            assert len(person.weights) == 1 and 25 <= person.weights[0].kg <= 350
        assert len({p.indication for p in people}) >= 4 and len({p.sex_at_birth for p in people}) >= 2
        assert sum(bool(p.medications) for p in people) >= 10
        assert sum(bool(p.allergies) for p in people) >= 4
        assert sum(bool(p.contraindications) for p in people) >= 2
        assert sum(p.consent_on is not None for p in people) == 11


def test_seed_puts_patients_at_every_stage(demo_clinic):
    app = demo_clinic.app
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


#: Seeding is the same Python on both databases; PostgreSQL takes the moment with the most date arithmetic.
@pytest.mark.parametrize(("backend", "moment"), [("sqlite", moment) for moment in MOMENTS]
                         + [("postgresql", "dst-sunday-13:00")], indirect=["backend"])
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


def test_a_second_run_changes_nothing(demo_clinic):
    app = demo_clinic.app
    before = snapshot(app)
    assert "skipped" in seed(app.test_cli_runner())
    assert snapshot(app) == before


def test_the_audit_chain_verifies_and_every_seeded_row_is_audited_as_the_demo_seed(demo_clinic):
    app = demo_clinic.app
    with app.app_context():
        assert verify_chain(app.config["AUDIT_KEY"]).ok
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert {e.username for e in events} == {"demo-seed", "nurse", "physician"}
    with app.app_context():
        at_chair = {str(todays_session(app, mrn).id) for mrn in (DISCHARGED, RECOVERY, INFUSING, CLEARED)}
        at_chair |= {str(visit.id) for visit in held_before_today(app)}
    # The chair's work on today's board and on the past sessions of the series with planned scores,
    # and earlier sessions' notes (drafted, completed, then signed).
    noted = {e.object_id for e in events if e.action == "note.signed"}
    by_nurse = [e for e in events if e.username == "nurse"]
    assert {e.action for e in by_nurse} == CHAIR_ACTIONS | {"note.drafted", "note.completed"}
    assert {e.object_id for e in by_nurse} == at_chair | noted
    assert {e.action for e in events if e.username == "physician"} >= {"note.signed"}
    actions = Counter(e.action for e in events)
    assert actions["staff.created"] == 4 and actions["chair.created"] == 4
    assert actions["patient.created"] == 12 and actions["series.ordered"] == 13
    assert actions["series.stopped"] == 1 and actions["session.discharged"] >= 30
    [seeded] = [e for e in events if e.action == "demo.seeded"]
    assert json.loads(seeded.details) == {"chairs": 4, "patients": 12, "series": 13,
                                              "sessions": snapshot(app)["InfusionSession"],
                                              "sessions_today": 6}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the seed's output and dates, not the database
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


def test_the_admin_sees_the_demo_chairs_on_the_clinic_page(demo_clinic):
    client = demo_clinic.app.test_client()
    assert client.login("admin", DEMO_PASSWORD).status_code == 302
    page = client.get("/admin/clinic/").get_data(as_text=True)
    assert "Window chair" in page and "Chair 3" in page


def held_before_today(app):
    """The past sessions held at the chair by the seed (those of the series in demo.service.SCORES)."""
    today = local(app, START).date()
    sessions = db.session.execute(
        select(InfusionSession, Patient.mrn, Protocol.code)
        .join(InfusionSeries, InfusionSeries.id == InfusionSession.series_id)
        .join(Patient, Patient.id == InfusionSession.patient_id)
        .join(Protocol, Protocol.id == InfusionSeries.protocol_id)
        .where(InfusionSession.status == "discharged")).all()
    return [visit for visit, mrn, code in sessions
            if (mrn, code) in SCORES and local(app, visit.starts_at).date() < today]


def todays_session(app, mrn, now=None):
    """A demo patient's session on today's board, loaded as the chair page loads it (in an app context)."""
    today = local(app, now or START).date()
    sessions = db.session.scalars(select(InfusionSession).join(Patient).where(Patient.mrn == mrn)).all()
    [session] = [s for s in sessions if local(app, s.starts_at).date() == today]
    return load_session(session.id)


def assert_every_past_timepoint_has_its_reading(view):
    assert view.timeline and all(row.reading for row in view.timeline if row.is_past and row.event is None)


def test_the_cleared_demo_session_is_clear_to_start_its_dose_when_seeded(demo_clinic, clock):
    app = demo_clinic.app
    with app.app_context():
        session = todays_session(app, CLEARED)
        assert session.status == "cleared"
        response = checklist.response_for(session, now=clock())
        assert response.outcome == "cleared" and response.updated_by_id is not None
        view = page_service.chair_view(session, now=clock())
        assert view.dose is None and view.start.may_proceed and view.start.open == ()
        assert outcome_of(view.start.findings) == Outcome.CLEARED
        # Its vitals were taken as the seed ran: past the policy's 30 minutes they are stale, as for a
        # patient kept waiting (a new set on the checklist clears it again).
        later = page_service.chair_view(session, now=clock() + timedelta(minutes=31))
        assert [f.code for f in later.start.open] == ["VITALS_STALE"]


def test_the_infusing_demo_session_has_its_dose_witnessed_record_and_readings(demo_clinic, clock):
    app = demo_clinic.app
    with app.app_context():
        session = todays_session(app, INFUSING)
        view = page_service.chair_view(session, now=clock())
        nurse, physician = (db.session.scalar(select(StaffUser.id).where(StaffUser.username == name))
                            for name in ("nurse", "physician"))
    assert session.status == "infusing"
    assert view.dose.dose_started_at < clock() and view.dose.infusion_ended_at is None
    assert dosing.iv_dose_mg(view.dose.mg_per_kg, view.dose.weight_kg) == view.dose.dose_mg
    entry = view.controlled
    assert (entry.recorded_by_id, entry.witness_id) == (nurse, physician)
    assert entry.given_mg == view.dose.dose_mg and entry.drawn_mg == entry.given_mg + entry.wasted_mg
    assert len(view.readings) >= 1 and all(r.recorded_by_id == nurse for r in view.readings)
    assert_every_past_timepoint_has_its_reading(view)
    assert not [alert for alert in view.alerts if alert.acknowledged_at is None]
    assert not view.next_due.overdue and view.next_due.due_at > clock()


def test_the_recovery_demo_session_has_ended_its_infusion_with_readings_into_recovery(demo_clinic, clock):
    app = demo_clinic.app
    with app.app_context():
        session = todays_session(app, RECOVERY)
        view = page_service.chair_view(session, now=clock(), moaas=5, escort_present=True, instructions_given=True,
                                   condition="Alert, steady")
        discharged = page_service.chair_view(todays_session(app, DISCHARGED), now=clock())
    assert session.status == "recovery" and view.controlled is not None
    ended = view.dose.infusion_ended_at
    assert view.dose.dose_started_at < ended < clock()
    assert any(r.taken_at > ended for r in view.readings)
    assert_every_past_timepoint_has_its_reading(view)
    # Only the minimum observation stands between the patient and discharge.
    assert [f.code for f in view.discharge.open] == ["OBSERVATION_NOT_COMPLETE"]
    assert discharged.visit.status == "discharged" and discharged.controlled is not None
    assert discharged.discharged.discharged_at <= clock()
    assert discharged.discharged.discharged_at > discharged.readings[-1].taken_at > discharged.dose.infusion_ended_at


def test_a_nurse_can_carry_each_demo_chair_on_to_discharge(demo_clinic, clock):
    app = demo_clinic.app
    with app.app_context():
        nurse = actor_for(db.session.scalar(select(StaffUser).where(StaffUser.username == "nurse")))
        cleared, infusing, recovery = (todays_session(app, mrn) for mrn in (CLEARED, INFUSING, RECOVERY))

        def reading(session, minutes):
            at = clock() + timedelta(minutes=minutes)
            vitals_service.record_vitals(session, systolic=124, diastolic=78, heart_rate=72, spo2=98, moaas=5,
                                   taken_at=at, actor=nurse, now=at)
            return at

        def discharge(session, at):
            discharge_service.discharge(session, moaas=5, escort_present=True, instructions_given=True,
                               condition="Alert and steady", actor=nurse, now=at)

        dose = dose_service.start_dose(cleared, infusion_minutes=None, actor=nurse, now=clock())
        dose_service.record_controlled_substance(
            cleared, product="Esketamine 28 mg device", lot="L1", expiry_on=clock().date() + timedelta(days=90),
            drawn_mg=dose.dose_mg, given_mg=dose.dose_mg, wasted_mg=0, witness_username="physician",
            witness_password=DEMO_PASSWORD, actor=nurse, now=clock())
        discharge(recovery, reading(recovery, 5))  # the observation ends 5 minutes after the seed
        reading(infusing, 5)
        dose_service.end_infusion(infusing, actor=nurse, now=clock() + timedelta(minutes=15))
        for minutes in (15, 30):
            reading(infusing, minutes)
        discharge(infusing, reading(infusing, 45))
        assert (cleared.status, infusing.status, recovery.status) == ("recovery", "discharged", "discharged")


def test_the_nurse_sees_coherent_chair_pages(demo_clinic):
    app = demo_clinic.app
    with app.app_context():
        ids = {mrn: todays_session(app, mrn).id for mrn in (DISCHARGED, RECOVERY, INFUSING, CLEARED)}
    client = app.test_client()
    assert client.login("nurse", DEMO_PASSWORD).status_code == 302
    pages = {mrn: client.get(f"/sessions/{ids[mrn]}/infusion") for mrn in ids}
    assert {response.status_code for response in pages.values()} == {200}
    html = {mrn: response.get_data(as_text=True) for mrn, response in pages.items()}
    for page in html.values():
        assert "Not taken" not in page and "Not acknowledged" not in page
    assert "<strong>Clear:</strong> nothing stops the dose" in html[CLEARED] and "Not clear" not in html[CLEARED]
    assert "OBSERVATION_NOT_COMPLETE" in html[RECOVERY] and "DISCHARGE_VITALS_MISSING" not in html[RECOVERY]
    assert f'action="/sessions/{ids[INFUSING]}/infusion/vitals"' in html[INFUSING]
    assert "witnessed by Demo Physician (fictional)" in html[INFUSING]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the seed's output and dates, not the database
def test_seeded_just_after_midnight_the_chairs_still_fall_on_today(app, runner, clock):
    clock.now = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)  # Tuesday 00:30 in New York
    seed(runner)
    today = local(app, clock()).date()
    with app.app_context():
        for mrn, state in ((DISCHARGED, "discharged"), (RECOVERY, "recovery"), (INFUSING, "infusing"),
                           (CLEARED, "cleared")):
            session = todays_session(app, mrn, clock())
            assert session.status == state
            response = checklist.response_for(session, now=clock())
            assert local(app, response.vitals_taken_at).date() == today


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_outcome_page_has_real_rates_and_one_series_has_every_held_session_signed(demo_clinic, clock):
    app = demo_clinic.app
    with app.test_request_context():
        groups = outcome_report(actor=SYSTEM, now=clock(), zone=clinic_zone()).groups
        series = db.session.scalar(select(InfusionSeries).join(Patient).join(Protocol).where(
            Patient.mrn == SIGNED_SERIES[0], Protocol.code == SIGNED_SERIES[1]))
        held = [s.id for s in series.sessions if s.status not in {"scheduled", "cancelled", "no_show"}]
        status, planned = series.status, series.planned_count
        signed = set(db.session.scalars(select(SessionNote.session_id).where(SessionNote.signed_at.is_not(None))))
    responding, remitting = (sum(getattr(g, rate).count for g in groups) for rate in ("response", "remission"))
    evaluable = sum(g.remission.of for g in groups)
    assert responding >= 1 and remitting >= 1 and responding < evaluable and remitting < evaluable
    client = app.test_client()
    assert client.login("physician", DEMO_PASSWORD).status_code == 302
    page = client.get("/reports/outcomes").get_data(as_text=True)
    assert str(groups[0].response) in page and str(groups[0].remission) in page
    assert status == "completed" and len(held) == planned and set(held) <= signed
