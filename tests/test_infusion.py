"""At the chair through the pages: the start gate and the dose, the controlled substance, vitals and
alerts, the next reading due, and the discharge gate. The frozen clock starts at 10:00 clinic time."""
import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.models import AuditEvent
from opsmgr.checklist import service as checklist
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.infusion import gate as gate_service
from opsmgr.infusion import vitals as vitals_service
from opsmgr.infusion.models import (
    ControlledSubstanceEntry,
    DischargeAssessment,
    DischargeRecord,
    DoseOrder,
    DoseRecord,
    InChairAlert,
    InfusionEvent,
    VitalSign,
)
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.schedule.service import change_status
from opsmgr.sessions.models import InfusionSession
from tests.conftest import PASSWORD
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, order_series

TODAY = date(2026, 11, 26)


def clear_answers(now, **changes):
    """A complete checklist that clears: BP 122/78, 72.4 kg, fasted, escort, consent, low scores."""
    return {
        "systolic": 122, "diastolic": 78, "heart_rate": 72, "spo2": 98, "temperature_c": Decimal("36.8"),
        "respiratory_rate": 14, "vitals_taken_at": now, "weight_kg": Decimal("72.4"), "medication_changes": [],
        "new_diagnoses": False, "cardio_cerebrovascular_event": False, "psychosis_symptoms": False,
        "mania_symptoms": False, "substance_use_in_window": False, "vascular_contraindication": False,
        "last_solid_food_at": now - timedelta(hours=8), "last_clear_liquid_at": now - timedelta(hours=3),
        "escort_name": "Sam Rivera", "escort_phone": "+1 555 0100", "consent_reconfirmed": True,
        "phq9_items": [1, 1, 1, 1, 0, 0, 1, 0, 0], "phq9_difficulty": 1, "gad7_items": [1, 1, 0, 0, 0, 0, 1],
        "suicide_risk": "negative", "willingness": "yes", "intention": "To feel like myself again.", **changes}


def make_session(app, clock, protocol="iv-induction", cleared=True, **answers):
    """Today's first session of a new series; checked in, checklist saved and cleared unless told not to."""
    with app.app_context():
        patient = create_patient(now=clock(), legal_name="Casey Chairtest")
        patients.record_consent(db.session.get(Patient, patient.id), consent_on=TODAY, form_version="v1",
                                actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        series = order_series(patient_id=patient.id, now=clock(), start_on=TODAY, preferred_time="11:00",
                              protocol_code=protocol)
        session = series.sessions[0]
        if cleared:
            for status in ("checked_in", "checklist"):
                change_status(session, status, reason="", actor=FACTORY_ACTOR, now=clock())
            checklist.save_answers(session, clear_answers(clock(), **answers), expected_version=None,
                                   actor=FACTORY_ACTOR, now=clock())
            change_status(session, "cleared", reason="", actor=FACTORY_ACTOR, now=clock(), gate_passed=True)
            db.session.commit()
        return session.id


@pytest.fixture
def chairs(app):
    with app.app_context():
        return create_chairs(2)


@pytest.fixture
def cleared(app, clock, chairs):
    return make_session(app, clock)


def fields(prefix, **values):
    return {f"{prefix}-{name}": str(value) for name, value in values.items()}


def url(session_id, action=""):
    return f"/sessions/{session_id}/infusion" + (f"/{action}" if action else "")


def start(client, session_id, **values):
    return client.submit(url(session_id, "start"), fields("start", **{"infusion_minutes": 40, **values}))


def vitals(client, session_id, at, systolic=128, diastolic=80, **values):
    reading = {"systolic": systolic, "diastolic": diastolic, "heart_rate": 76, "spo2": 97, "moaas": 5,
               "taken_at": at, **values}
    return client.submit(url(session_id, "vitals"), fields("vitals", **reading))


def discharge(client, session_id, **values):
    answers = {"moaas": 5, "escort_present": "yes", "instructions_given": "yes",
               "condition": "Alert and steady; leaving with her partner.", **values}
    return client.submit(url(session_id, "discharge"), fields("discharge", **answers))


def done(response):
    """Accepted: redirected back to the page (not to the login page)."""
    return response.status_code == 302 and "/infusion" in response.headers["Location"]


def wait(clock, minutes, *clients):
    """Let time pass at the chair; the staff keep using the app, so no one is signed out for idling."""
    while minutes > 0:
        step = min(minutes, 10)
        clock.advance(minutes=step)
        minutes -= step
        for client in clients:
            assert client.get("/today").status_code == 200


def status_of(app, session_id):
    with app.app_context():
        return db.session.scalar(select(InfusionSession.status).where(InfusionSession.id == session_id))


def rows(app, model, session_id):
    with app.app_context():
        return db.session.scalars(select(model).where(model.session_id == session_id)).all()


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def text(response):
    return response.get_data(as_text=True)


def words(response):
    """The page as read: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def read(response):
    """The page as read, with entities decoded (session&#39;s → session's)."""
    return unescape(words(response))


# --- the start gate ------------------------------------------------------------------------------


def test_page_shows_the_dose_with_its_inputs_and_the_start_form(cleared, login_as):
    page = login_as("nurse").get(url(cleared))
    html = text(page)
    assert page.status_code == 200
    assert "0.5 mg/kg × 72.4 kg = <strong>36.2 mg</strong>, over 40 minutes" in html
    assert "The series dose, as the physician ordered the series." in html
    assert "Clear:" in html and "Start dose" in html


def test_nurse_starts_the_dose_and_the_record_keeps_its_inputs(app, cleared, login_as, clock):
    assert done(start(login_as("nurse"), cleared))
    [dose] = rows(app, DoseRecord, cleared)
    assert (dose.mg_per_kg, dose.weight_kg, dose.dose_mg, dose.infusion_minutes) == (
        Decimal("0.5"), Decimal("72.4"), Decimal("36.2"), 40)
    assert dose.dose_started_at == clock() and dose.infusion_ended_at is None and dose.change_reason == ""
    assert status_of(app, cleared) == "infusing"
    [event] = events(app, "dose.started")
    assert event.patient_id is not None and '"dose_mg":"36.2"' in event.details


def test_start_refused_on_the_server_when_the_session_is_not_cleared(app, clock, chairs, login_as):
    session_id = make_session(app, clock, cleared=False)
    response = start(login_as("nurse"), session_id)
    assert response.status_code == 400
    assert "only when the session is cleared" in text(response)
    assert status_of(app, session_id) == "scheduled" and rows(app, DoseRecord, session_id) == []


@pytest.mark.parametrize("minutes,expected", [(30, 302), (31, 400)])
def test_start_refused_when_the_checklist_vitals_went_stale(app, cleared, login_as, clock, minutes, expected):
    clock.advance(minutes=minutes)
    response = start(login_as("nurse"), cleared)
    assert response.status_code == expected
    if expected == 400:
        assert "VITALS_STALE" in text(response)
        assert status_of(app, cleared) == "cleared" and rows(app, DoseRecord, cleared) == []
        [refusal] = events(app, "dose.start_refused")
        assert refusal.outcome == "denied" and "VITALS_STALE" in refusal.details


def test_a_direct_post_cannot_start_a_dose_the_checklist_no_longer_clears(app, cleared, login_as, clock):
    with app.app_context():
        session = db.session.get(InfusionSession, cleared)
        response = checklist.response_for(session, now=clock())
        checklist.save_answers(session, {"systolic": 186, "diastolic": 101}, expected_version=response.version,
                               actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    nurse = login_as("nurse")
    assert "Not clear:" in text(nurse.get(url(cleared)))
    refused = nurse.submit(url(cleared, "start"), {})  # no fields at all: the series dose, no minutes
    assert refused.status_code == 400
    assert status_of(app, cleared) == "cleared"
    refused = start(nurse, cleared)
    assert refused.status_code == 400 and "BP_HARD_GATE" in text(refused)
    assert status_of(app, cleared) == "cleared" and rows(app, DoseRecord, cleared) == []


def order(client, session_id, dose="0.8", reason="Partial response at 0.5 after four sessions", password=PASSWORD):
    return client.submit(url(session_id, "dose-order"), fields("order", dose=dose, reason=reason, password=password))


def order_id(app, session_id):
    with app.app_context():
        return db.session.scalars(select(DoseOrder.id).where(DoseOrder.session_id == session_id)
                                  .order_by(DoseOrder.id.desc())).first()


OVERRIDE_DOSE = "override-start-DOSE_OUTSIDE_USUAL_RANGE"


def test_a_physicians_dose_order_is_the_dose_the_nurse_sees_and_gives(app, cleared, login_as, make_user, clock):
    """The patient-safety defect: 0.8 mg/kg ordered and overridden, the nurse's start gave 0.5 mg/kg."""
    nurse, physician = login_as("nurse"), login_as("physician")
    assert nurse.submit(url(cleared, "dose-order"), fields("order", dose="0.8", reason="Because.",
                                                           password=PASSWORD)).status_code == 403
    ordered = order(physician, cleared)
    assert ordered.status_code == 302 and ordered.headers["Location"].endswith("#start-gate")
    [row] = rows(app, DoseOrder, cleared)
    assert (row.mg_per_kg, row.dose_mg, row.ordered_by_id, row.ordered_at) == (
        Decimal("0.8"), None, physician.user.id, clock())
    assert row.reason == "Partial response at 0.5 after four sessions" and row.policy_version is not None
    [event] = events(app, "dose.ordered")
    assert '"now":"0.8 mg/kg (ordered)"' in event.details and '"was":"0.5 mg/kg (the series dose)"' in event.details

    page = read(nurse.get(url(cleared)))
    assert "Dose to give: 0.8 mg/kg × 72.4 kg = 57.9 mg , over 40 minutes" in page
    assert re.search(r"Set for this session by [^:]+ at 10:00 : Partial response at 0.5", page)
    assert "Not clear:" in page and "Start dose" not in page, "no control the server would refuse"

    # The physician's override form starts from the order's reason: nothing to type again.
    physician_page = text(physician.get(url(cleared)))
    assert "Partial response at 0.5 after four sessions</textarea>" in physician_page.replace("\n", "")
    assert f'name="{OVERRIDE_DOSE}-dose_order" type="hidden" value="{row.id}"' in physician_page
    override_url = url(cleared, "overrides/start/DOSE_OUTSIDE_USUAL_RANGE")
    assert done(physician.submit(override_url, fields(OVERRIDE_DOSE, dose_order=row.id, infusion_minutes=40,
                                                      reason=row.reason, password=PASSWORD)))
    page = read(nurse.get(url(cleared)))
    assert "Clear:" in page and "Start dose: 57.9 mg" in page
    assert done(start(nurse, cleared, dose_order=row.id))
    [dose] = rows(app, DoseRecord, cleared)
    assert (dose.mg_per_kg, dose.weight_kg, dose.dose_mg) == (Decimal("0.8"), Decimal("72.4"), Decimal("57.9"))
    assert (dose.change_reason, dose.changed_by_id, dose.dose_order_id) == (row.reason, physician.user.id, row.id)


def test_the_start_records_the_order_in_force_and_refuses_a_page_that_showed_another(app, cleared, login_as):
    nurse, physician = login_as("nurse"), login_as("physician")
    assert order(physician, cleared, dose="0.6", reason="Nausea at 0.5; try 0.6").status_code == 302
    first = order_id(app, cleared)
    assert order(physician, cleared, dose="0.7", reason="On reflection, 0.7 after the review").status_code == 302
    # The nurse's page still showed the first order (or the series dose): the start is refused, typed time kept.
    for shown in (first, 0):
        refused = start(nurse, cleared, dose_order=shown, infusion_minutes=45)
        assert refused.status_code == 400 and rows(app, DoseRecord, cleared) == []
        page = read(refused)
        assert "A physician changed this session's dose after this page was opened: it is now 0.7 mg/kg" in page
        assert 'value="45"' in text(refused), "the typed infusion time is kept"
    assert done(start(nurse, cleared, dose_order=order_id(app, cleared)))
    [dose] = rows(app, DoseRecord, cleared)
    expected = (Decimal("0.7"), Decimal("50.7"), order_id(app, cleared))
    assert (dose.mg_per_kg, dose.dose_mg, dose.dose_order_id) == expected


@pytest.mark.parametrize("values,field,message", [
    ({"dose": "0.5"}, "dose", "0.5 is already this session's dose"),
    ({"dose": "3"}, "dose", "Enter a dose between 0.01 and 2 mg/kg."),
    ({"dose": "abc"}, "dose", "Not a valid decimal value."),
    ({"reason": "tbd"}, "reason", "Give the reason for changing this session's dose"),
    ({"password": "wrong"}, "password", "The password is not correct; the dose was not changed."),
])
def test_a_refused_order_says_why_at_its_field_and_keeps_what_was_typed(app, cleared, login_as, values, field, message):
    physician = login_as("physician")
    typed = {"dose": "0.8", "reason": "Partial response at 0.5 after four sessions", "password": PASSWORD, **values}
    refused = order(physician, cleared, **typed)
    assert refused.status_code == 400 and rows(app, DoseOrder, cleared) == []
    html = text(refused)
    error = re.search(rf'id="order-{field}-error"[^>]*>(.*?)</div>', html, re.S)
    assert error and message in unescape(error.group(1)), html[:0]
    assert f'value="{typed["dose"]}"' in html and f"{typed['reason']}</textarea>" in html
    assert "<details" in html and 'id="dose-order"' in html


def test_a_wrong_password_on_an_order_is_audited_and_counts_toward_lockout(app, cleared, login_as):
    physician = login_as("physician")
    assert order(physician, cleared, password="wrong").status_code == 400
    assert len(events(app, "reauth.failed")) == 1
    with app.app_context():
        from opsmgr.auth.models import StaffUser

        assert db.session.get(StaffUser, physician.user.id).failed_login_count == 1


def test_an_override_covers_the_dose_it_was_given_for_and_no_other(app, cleared, login_as):
    physician = login_as("physician")
    override_url = url(cleared, "overrides/start/DOSE_OUTSIDE_USUAL_RANGE")
    assert order(physician, cleared, dose="0.8").status_code == 302
    assert done(physician.submit(override_url, fields(OVERRIDE_DOSE, dose_order=order_id(app, cleared),
                                                      infusion_minutes=40, reason="Tolerated well.",
                                                      password=PASSWORD)))
    assert order(physician, cleared, dose="0.95", reason="Still partial at 0.8").status_code == 302
    refused = start(physician, cleared, dose_order=order_id(app, cleared))
    assert refused.status_code == 400 and "DOSE_OUTSIDE_USUAL_RANGE" in text(refused), "a new dose opens it again"
    # An override posted from a page that showed the old dose is refused, not applied to the new one.
    stale = physician.submit(override_url, fields(OVERRIDE_DOSE, dose_order=order_id(app, cleared) - 1,
                                                  infusion_minutes=40, reason="Still tolerated.", password=PASSWORD))
    assert stale.status_code == 400 and "changed this session's dose" in read(stale)
    assert done(physician.submit(override_url, fields(OVERRIDE_DOSE, dose_order=order_id(app, cleared),
                                                      infusion_minutes=40, reason="Still tolerated.",
                                                      password=PASSWORD)))
    assert done(start(physician, cleared, dose_order=order_id(app, cleared)))
    [row] = rows(app, FindingOverride, cleared)
    assert row.finding["values"]["mg_per_kg"] == "0.950" and len(events(app, "override.superseded")) == 1


def test_an_esketamine_order_is_in_whole_devices(app, clock, chairs, login_as):
    session_id = make_session(app, clock, protocol="esketamine-induction")
    physician = login_as("physician")
    refused = order(physician, session_id, dose="30")
    assert refused.status_code == 400 and "An esketamine dose must be 28, 56, 84 mg" in read(refused)
    assert order(physician, session_id, dose="90").status_code == 400
    assert order(physician, session_id, dose="84", reason="Partial response at 56 mg").status_code == 302
    page = read(login_as("nurse").get(url(session_id)))
    assert "Dose to give: 84 mg esketamine" in page and "Partial response at 56 mg" in page


def test_an_absolute_finding_cannot_be_overridden(app, cleared, login_as, clock):
    clock.advance(minutes=45)
    physician = login_as("physician")
    response = physician.submit(url(cleared, "overrides/start/VITALS_STALE"),
                                fields("override-start-VITALS_STALE", reason="Patient looks fine to me.",
                                       password=PASSWORD))
    assert response.status_code == 400 and "cannot be overridden by anyone" in text(response)
    assert rows(app, FindingOverride, cleared) == []


# --- controlled substance ------------------------------------------------------------------------


@pytest.fixture
def infusing(app, cleared, login_as):
    nurse = login_as("nurse")
    assert done(start(nurse, cleared))
    return cleared, nurse


def record_cs(client, session_id, **values):
    entry = {"product": "Ketamine 50 mg/mL, 10 mL vial", "lot": "KX2291", "expiry_on": "2027-06-30",
             "drawn_mg": "50", "given_mg": "36.2", "wasted_mg": "13.8", **values}
    return client.submit(url(session_id, "controlled-substance"), fields("cs", **entry))


@pytest.mark.parametrize("case,message", [
    ("unbalanced", "must equal given (36.2 mg) plus wasted (13.0 mg)"),
    ("same_person", "A second staff member must witness the record."),
    ("wrong_password", "username or password is not correct"),
    ("expired", "The product expired on 2026-11-25; do not use it."),
])
def test_controlled_substance_record_refused(app, infusing, make_user, case, message):
    session_id, nurse = infusing
    witness = make_user("nurse")
    values = {"witness_username": witness.username, "witness_password": PASSWORD}
    values |= {"unbalanced": {"wasted_mg": "13.0"}, "expired": {"expiry_on": "2026-11-25"},
               "same_person": {"witness_username": nurse.user.username},
               "wrong_password": {"witness_password": "not the witness password"}}[case]
    response = record_cs(nurse, session_id, **values)
    assert response.status_code == 400 and message in text(response)
    assert 'value="KX2291"' in text(response), "what was typed is kept"
    assert rows(app, ControlledSubstanceEntry, session_id) == []
    assert len(events(app, "controlled_substance.witness_refused")) == (case == "wrong_password")


def test_controlled_substance_record_with_a_witness_is_accepted(app, infusing, make_user):
    session_id, nurse = infusing
    witness = make_user("physician")
    response = record_cs(nurse, session_id, witness_username=witness.username, witness_password=PASSWORD)
    assert response.status_code == 302
    [entry] = rows(app, ControlledSubstanceEntry, session_id)
    assert (entry.drawn_mg, entry.given_mg, entry.wasted_mg, entry.witness_id) == (
        Decimal("50"), Decimal("36.2"), Decimal("13.8"), witness.id)
    assert "drawn 50 mg = given 36.2 mg + wasted 13.8 mg" in text(nurse.get(url(session_id)))


def test_the_database_itself_refuses_an_unbalanced_record(app, infusing, make_user, clock):
    session_id, nurse = infusing
    witness = make_user("nurse")
    with app.app_context():
        db.session.add(ControlledSubstanceEntry(
            session_id=session_id, product="Ketamine", lot="L1", expiry_on=date(2027, 1, 1), drawn_mg=Decimal("50"),
            given_mg=Decimal("36.2"), wasted_mg=Decimal("13"), recorded_by_id=nurse.user.id, witness_id=witness.id,
            recorded_at=clock()))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def cs_error(response, field):
    match = re.search(rf'<div id="cs-{field}-error"[^>]*>(.*?)</div>', text(response), re.S)
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())) if match else ""


@pytest.mark.parametrize("given,wasted,reason,message", [
    ("40", "10", "", "The amount given (40 mg) is more than this session's dose (36.2 mg)."),
    ("36.3", "13.7", "The physician asked for a little more.", "is more than this session's dose (36.2 mg)"),
    ("30", "20", "", "The amount given (30 mg) is less than this session's dose (36.2 mg). Say why below"),
    ("36.1", "13.9", "abcd", "is less than this session's dose (36.2 mg)"),
])
def test_an_amount_given_other_than_the_dose_is_refused_at_the_field(app, infusing, make_user, given, wasted,
                                                                      reason, message):
    session_id, nurse = infusing
    witness = make_user("nurse")
    response = record_cs(nurse, session_id, given_mg=given, wasted_mg=wasted, shortfall_reason=reason,
                         witness_username=witness.username, witness_password=PASSWORD)
    assert response.status_code == 400
    assert message in cs_error(response, "given_mg")
    assert f'value="{given}"' in text(response) and 'value="KX2291"' in text(response), "what was typed is kept"
    assert rows(app, ControlledSubstanceEntry, session_id) == []
    assert events(app, "controlled_substance.witness_refused") == [], "refused before the witness is asked"


def test_less_than_the_dose_is_recorded_with_its_reason(app, infusing, make_user):
    session_id, nurse = infusing
    witness = make_user("physician")
    reason = "Infusion stopped at 22 minutes after a BP alert."
    response = record_cs(nurse, session_id, given_mg="20", wasted_mg="30", shortfall_reason=reason,
                         witness_username=witness.username, witness_password=PASSWORD)
    assert done(response)
    [entry] = rows(app, ControlledSubstanceEntry, session_id)
    assert (entry.given_mg, entry.wasted_mg, entry.shortfall_reason) == (Decimal("20"), Decimal("30"), reason)
    [event] = events(app, "controlled_substance.recorded")
    assert '"less_than_dose":true' in event.details and reason not in event.details
    page = words(nurse.get(url(session_id)))
    assert f"Less than the dose given 20 mg of the 36.2 mg dose: {reason}" in page


def test_the_whole_dose_keeps_no_shortfall_reason(app, infusing, make_user):
    session_id, nurse = infusing
    witness = make_user("nurse")
    assert done(record_cs(nurse, session_id, shortfall_reason="Typed by mistake.", witness_username=witness.username,
                          witness_password=PASSWORD))
    [entry] = rows(app, ControlledSubstanceEntry, session_id)
    assert entry.shortfall_reason == "" and "Less than the dose" not in words(nurse.get(url(session_id)))


def test_the_page_shows_the_dose_beside_the_amounts(infusing):
    session_id, nurse = infusing
    assert "This session's dose: 36.2 mg" in read(nurse.get(url(session_id)))


# --- vitals, alerts and the next reading due -----------------------------------------------------


def test_bad_vitals_come_back_at_the_field_with_everything_kept(app, infusing, clock):
    session_id, nurse = infusing
    clock.advance(minutes=10)
    response = vitals(nurse, session_id, "10:10", systolic=400, heart_rate="abc")
    html = text(response)
    assert response.status_code == 400
    assert "Number must be between 50 and 260." in html and "Not a valid integer value." in html
    assert 'value="80"' in html and 'value="97"' in html and 'value="10:10"' in html
    future = vitals(nurse, session_id, "10:20")
    assert future.status_code == 400 and "This time is in the future." in text(future)
    assert rows(app, VitalSign, session_id) == []


def test_next_vitals_due_is_shown_and_overdue_after_ten_minutes(app, infusing, clock):
    session_id, nurse = infusing
    board = words(nurse.get("/today"))
    assert "Next vitals: 10:10" in board and "Reading overdue" not in board
    clock.advance(minutes=10)
    assert "Reading overdue" not in words(nurse.get("/today")), "a reading exactly at the due time is on time"
    clock.advance(seconds=1)
    board, page = words(nurse.get("/today")), words(nurse.get(url(session_id)))
    assert "Reading overdue by 1 min — record vitals. Next vitals: 10:10" in board
    assert "10:10 · Infusion reading (every 10 min) OVERDUE" in page
    assert done(vitals(nurse, session_id, "10:10"))
    assert "Next vitals: 10:20" in words(nurse.get("/today"))
    with app.app_context():
        due = vitals_service.next_vitals_due(db.session.get(InfusionSession, session_id), clock())
        assert due.due_at == clock() + timedelta(minutes=10) - timedelta(seconds=1) and not due.overdue


def test_an_alert_must_be_acknowledged_before_discharge(app, infusing, clock, login_as):
    session_id, nurse = infusing
    for minute, (systolic, diastolic) in zip((10, 20, 30, 40), ((128, 80), (185, 112), (150, 92), (132, 84)),
                                             strict=True):
        clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}", systolic, diastolic))
    [alert] = rows(app, InChairAlert, session_id)
    assert alert.code == "ALERT_BLOOD_PRESSURE" and "185/112" in alert.message and alert.acknowledged_at is None
    assert done(nurse.submit(url(session_id, "end")))
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))

    refused = discharge(nurse, session_id)
    assert refused.status_code == 400 and "ALERT_UNACKNOWLEDGED" in text(refused)
    assert status_of(app, session_id) == "recovery"

    ack = f"alert{alert.id}"
    ack_url = url(session_id, f"alerts/{alert.id}/acknowledge")
    assert login_as("coordinator").submit(ack_url, fields(ack, action="continue", note="x")).status_code == 403
    missing = nurse.submit(ack_url, fields(ack, action="continue", note=""))
    assert missing.status_code == 400 and "This field is required." in text(missing)
    assert done(nurse.submit(ack_url, fields(ack, action="slow", note="Rate halved; BP rechecked in 5 min.",
                                             drug_given="Labetalol 10 mg IV")))
    again = nurse.submit(ack_url, fields(ack, action="continue", note="Again"))
    assert again.status_code == 400 and "already been acknowledged" in text(again)
    assert done(discharge(nurse, session_id))
    assert status_of(app, session_id) == "discharged"
    [row] = rows(app, InChairAlert, session_id)
    assert (row.action, row.drug_given, row.acknowledged_at) == ("slow", "Labetalol 10 mg IV", clock())


def test_stop_ends_the_infusion_at_its_time(app, infusing, clock):
    session_id, nurse = infusing
    clock.advance(minutes=12)
    assert done(vitals(nurse, session_id, "10:12", moaas=2))
    [alert] = rows(app, InChairAlert, session_id)
    assert alert.code == "ALERT_SEDATION"
    clock.advance(minutes=1)
    assert done(nurse.submit(url(session_id, f"alerts/{alert.id}/acknowledge"),
                             fields(f"alert{alert.id}", action="stop", note="Deeply sedated; infusion stopped.")))
    [dose] = rows(app, DoseRecord, session_id)
    assert dose.infusion_ended_at == clock() and status_of(app, session_id) == "recovery"


def test_recovery_is_reached_only_by_ending_the_infusion_which_records_when(app, infusing, clock):
    session_id, nurse = infusing
    wait(clock, 40, nurse)
    bare = nurse.submit(f"/sessions/{session_id}/status", {"target": "recovery"})
    assert bare.status_code == 400 and "cannot be set directly" in text(bare)
    assert status_of(app, session_id) == "infusing"
    assert done(nurse.submit(url(session_id, "end")))
    [dose] = rows(app, DoseRecord, session_id)
    assert dose.infusion_ended_at == clock() and status_of(app, session_id) == "recovery"


# --- pause and resume ----------------------------------------------------------------------------


def alert_at(app, client, session_id, clock, minutes, clinic_time, systolic=185, diastolic=112):
    """A reading that raises a BP alert `minutes` from now; the alert's id."""
    clock.advance(minutes=minutes)
    assert done(vitals(client, session_id, clinic_time, systolic, diastolic))
    return [a.id for a in rows(app, InChairAlert, session_id) if a.acknowledged_at is None][-1]


def acknowledge(client, session_id, alert_id, action, note="BP high; infusion held, recheck in 5 min."):
    return client.submit(url(session_id, f"alerts/{alert_id}/acknowledge"),
                         fields(f"alert{alert_id}", action=action, note=note))


def resume(client, session_id, note=""):
    return client.submit(url(session_id, "resume"), fields("resume", note=note))


def kinds(app, session_id):
    return [(e.kind, e.occurred_at) for e in rows(app, InfusionEvent, session_id)]


@pytest.fixture
def paused(app, infusing, clock):
    """Paused at 10:13 after a BP alert on the 10:12 reading."""
    session_id, nurse = infusing
    alert_id = alert_at(app, nurse, session_id, clock, 12, "10:12")
    clock.advance(minutes=1)
    assert done(acknowledge(nurse, session_id, alert_id, "pause"))
    return session_id, nurse


def test_a_pause_is_an_event_with_its_time_and_the_infusion_shows_paused(app, paused, clock):
    session_id, nurse = paused
    assert kinds(app, session_id) == [("pause", clock())]
    [event] = rows(app, InfusionEvent, session_id)
    assert event.alert_id == rows(app, InChairAlert, session_id)[0].id and event.recorded_by_id == nurse.user.id
    [audit] = events(app, "infusion.paused")
    assert audit.patient_id is not None and f'"event_id":{event.id}' in audit.details
    page = words(nurse.get(url(session_id)))
    assert "Infusion ended Paused since 10:13: not running" in page and "Resume infusion" in page
    assert "10:13 Infusion paused by " in page and "after an alert" in page
    assert status_of(app, session_id) == "infusing"


def test_readings_stay_due_every_ten_minutes_while_paused(app, paused, clock):
    session_id, nurse = paused
    assert "Next vitals: 10:22" in words(nurse.get("/today")), "ten minutes after the 10:12 reading"
    clock.advance(minutes=9, seconds=1)
    assert "Reading overdue by 1 min — record vitals. Next vitals: 10:22" in words(nurse.get("/today"))


def test_resume_records_the_time_and_the_planned_end_moves_back(app, paused, clock, login_as):
    session_id, _ = paused
    physician = login_as("physician")
    clock.advance(minutes=7)
    assert done(resume(physician, session_id, "BP 150/90 on recheck."))
    assert [kind for kind, _ in kinds(app, session_id)] == ["pause", "resume"]
    assert kinds(app, session_id)[1][1] == clock()
    [audit] = events(app, "infusion.resumed")
    assert '"paused_minutes":7' in audit.details and "150/90" not in audit.details
    page = words(physician.get(url(session_id)))
    assert "10:20 Infusion resumed by " in page and "BP 150/90 on recheck." in page
    assert "Infusion ended Running" in page and "Resume infusion" not in page
    assert "10:47 End of infusion" in page, "40 minutes plus the 7 paused"
    assert page.index("10:13 Infusion paused") < page.index("10:20 Infusion resumed") < page.index("10:47 End")


def test_ending_the_infusion_records_the_time_paused(app, paused, clock):
    session_id, nurse = paused
    clock.advance(minutes=5)
    assert done(nurse.submit(url(session_id, "end")))
    assert status_of(app, session_id) == "recovery"
    [audit] = events(app, "infusion.ended")
    assert '"paused_minutes":5' in audit.details
    page = words(nurse.get(url(session_id)))
    assert "Resume infusion" not in page and "Infusion ended 10:18" in page


def test_stop_while_paused_is_an_event_and_ends_the_infusion(app, paused, clock):
    session_id, nurse = paused
    alert_id = alert_at(app, nurse, session_id, clock, 2, "10:15", systolic=190, diastolic=115)
    assert done(acknowledge(nurse, session_id, alert_id, "stop", "Still rising; infusion stopped."))
    assert [kind for kind, _ in kinds(app, session_id)] == ["pause", "stop"]
    assert status_of(app, session_id) == "recovery"
    assert rows(app, DoseRecord, session_id)[0].infusion_ended_at == clock()
    assert len(events(app, "infusion.stopped")) == 1
    assert "10:15 Infusion stopped" in words(nurse.get(url(session_id)))
    refused = resume(nurse, session_id)
    assert refused.status_code == 400
    assert "Only a paused infusion can be resumed; the session's status is recovery." in read(refused)


def test_a_second_pause_while_paused_changes_nothing(app, paused, clock):
    session_id, nurse = paused
    first = kinds(app, session_id)
    alert_id = alert_at(app, nurse, session_id, clock, 2, "10:15")
    assert done(acknowledge(nurse, session_id, alert_id, "pause"))
    assert kinds(app, session_id) == first and len(events(app, "infusion.paused")) == 1


def test_a_direct_post_to_resume_a_running_infusion_is_refused(app, infusing):
    session_id, nurse = infusing
    refused = resume(nurse, session_id)
    assert refused.status_code == 400 and "The infusion is not paused" in words(refused)
    assert kinds(app, session_id) == [] and events(app, "infusion.resumed") == []


def test_resume_twice_is_refused_the_second_time(app, paused, clock):
    session_id, nurse = paused
    assert done(resume(nurse, session_id))
    again = resume(nurse, session_id)
    assert again.status_code == 400 and "not paused (perhaps a colleague resumed it just now)" in words(again)
    assert [kind for kind, _ in kinds(app, session_id)] == ["pause", "resume"]


def test_resume_before_the_dose_is_refused(app, cleared, login_as):
    refused = resume(login_as("nurse"), cleared)
    assert refused.status_code == 400 and "the session's status is cleared to dose." in read(refused)
    assert kinds(app, cleared) == []


def test_pause_is_refused_once_the_infusion_has_ended(app, recovering, clock):
    session_id, nurse = recovering
    alert_id = alert_at(app, nurse, session_id, clock, 5, "10:45")
    refused = acknowledge(nurse, session_id, alert_id, "pause")
    assert refused.status_code == 400 and "There is no running infusion to pause" in text(refused)
    assert rows(app, InChairAlert, session_id)[-1].acknowledged_at is None and kinds(app, session_id) == []
    assert done(acknowledge(nurse, session_id, alert_id, "continue"))


def test_a_too_long_resume_note_is_an_error_at_the_field(app, paused):
    session_id, nurse = paused
    refused = resume(nurse, session_id, "x" * 301)
    assert refused.status_code == 400 and "Field cannot be longer than 300 characters." in text(refused)
    assert [kind for kind, _ in kinds(app, session_id)] == ["pause"]


# --- discharge -----------------------------------------------------------------------------------


@pytest.fixture
def recovering(app, infusing, clock):
    """The infusion ran 40 minutes with its readings and ended; a recovery reading at once."""
    session_id, nurse = infusing
    for minute in (10, 20, 30, 40):
        clock.advance(minutes=10)
        assert done(vitals(nurse, session_id, f"10:{minute}"))
    assert done(nurse.submit(url(session_id, "end")))
    return session_id, nurse


def test_discharge_refused_at_29_minutes_and_allowed_at_30(app, recovering, clock):
    session_id, nurse = recovering
    wait(clock, 15, nurse)
    assert done(vitals(nurse, session_id, "10:55"))
    wait(clock, 14, nurse)
    page = text(nurse.get(url(session_id)))
    assert "No driving" in page and "emergency phone number" in page
    refused = discharge(nurse, session_id)
    assert refused.status_code == 400 and "The minimum observation ends in 1 min." in text(refused)
    assert status_of(app, session_id) == "recovery" and rows(app, DischargeRecord, session_id) == []
    clock.advance(minutes=1)
    assert done(discharge(nurse, session_id))
    assert status_of(app, session_id) == "discharged"
    [record] = rows(app, DischargeRecord, session_id)
    assert (record.moaas, record.escort_present, record.instructions_given) == (5, True, True)


@pytest.mark.parametrize("answers,code", [
    ({"escort_present": "no"}, "ESCORT_NOT_PRESENT"),
    ({"instructions_given": "no"}, "INSTRUCTIONS_NOT_GIVEN"),
    ({"moaas": 4}, "MENTAL_STATUS_NOT_BASELINE"),
])
def test_a_direct_post_to_discharge_is_refused_and_the_status_stays(app, recovering, clock, answers, code):
    session_id, nurse = recovering
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    refused = discharge(nurse, session_id, **answers)
    assert refused.status_code == 400 and code in text(refused)
    assert status_of(app, session_id) == "recovery" and rows(app, DischargeRecord, session_id) == []


def test_discharge_refused_while_infusing_and_without_recovery_vitals(app, infusing, clock):
    session_id, nurse = infusing
    refused = discharge(nurse, session_id)
    assert refused.status_code == 400 and "Only a patient in recovery can be discharged" in text(refused)
    assert done(nurse.submit(url(session_id, "end")))
    wait(clock, 30, nurse)
    refused = discharge(nurse, session_id)
    assert refused.status_code == 400 and "DISCHARGE_VITALS_MISSING" in text(refused)
    assert status_of(app, session_id) == "recovery"


def test_physician_signs_off_a_mental_status_below_baseline(app, recovering, clock, login_as):
    session_id, nurse = recovering
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    assert discharge(nurse, session_id, moaas=4).status_code == 400
    physician = login_as("physician")
    override_url = url(session_id, "overrides/discharge/MENTAL_STATUS_NOT_BASELINE")
    sign_off = fields("override-discharge-MENTAL_STATUS_NOT_BASELINE", moaas=4, password=PASSWORD,
                      reason="Baseline is 4: chronic fatigue.")
    wrong = physician.submit(override_url, {**sign_off, "override-discharge-MENTAL_STATUS_NOT_BASELINE-password": "x"})
    assert wrong.status_code == 400
    assert re.search(r'id="override-discharge-MENTAL_STATUS_NOT_BASELINE-password-error"[^>]*>\s*<span[^>]*>'
                     r'<strong>Error:</strong> The password is not correct', text(wrong)), "shown at the field"
    assert done(physician.submit(override_url, sign_off))
    assert discharge(nurse, session_id, moaas=3).status_code == 400, "the sign-off was for MOAA/S 4"
    assert done(discharge(nurse, session_id, moaas=4))


def test_a_refused_discharge_waits_for_the_physician_with_the_nurses_answers(app, recovering, clock, login_as):
    """Issue 8 A2: the physician opening the session sees the nurse's answers, the finding and the
    override form at once, without anyone retyping the discharge form."""
    session_id, nurse = recovering
    wait(clock, 30, nurse)
    assert done(vitals(nurse, session_id, "11:10"))
    condition = "Drowsy but rousable; partner here to drive."
    assert discharge(nurse, session_id, moaas=4, condition=condition).status_code == 400
    [pending] = rows(app, DischargeAssessment, session_id)
    assert (pending.moaas, pending.escort_present, pending.instructions_given, pending.condition) == (
        4, True, True, condition)
    assert [f["code"] for f in pending.open_findings] == ["MENTAL_STATUS_NOT_BASELINE"]
    assert pending.assessed_by_id == nurse.user.id and pending.assessed_at == clock()
    assert [e.outcome for e in events(app, "discharge.refused")] == ["denied"]

    physician = login_as("physician")
    page = text(physician.get(url(session_id)))
    assert "Waiting for a physician" in page and condition in page
    assert 'name="override-discharge-MENTAL_STATUS_NOT_BASELINE-reason"' in page
    assert '<option selected value="4">' in page, "the nurse's MOAA/S is kept in the form"
    override_url = url(session_id, "overrides/discharge/MENTAL_STATUS_NOT_BASELINE")
    assert done(physician.submit(override_url, fields("override-discharge-MENTAL_STATUS_NOT_BASELINE",
                                                      password=PASSWORD, reason="Baseline is 4: chronic fatigue.")))
    page = read(nurse.get(url(session_id)))
    assert "Clear: nothing stops the discharge." in page and condition in page
    assert done(discharge(nurse, session_id, moaas=4, condition=condition))
    assert status_of(app, session_id) == "discharged"


# --- esketamine ----------------------------------------------------------------------------------


def test_esketamine_dose_is_instantaneous_and_observed_from_the_dose(app, clock, chairs, login_as):
    session_id = make_session(app, clock, protocol="esketamine-induction")
    nurse = login_as("nurse")
    assert "<strong>56 mg</strong> esketamine" in text(nurse.get(url(session_id)))
    assert done(nurse.submit(url(session_id, "start"), {}))
    [dose] = rows(app, DoseRecord, session_id)
    assert dose.dose_mg == 56 and dose.infusion_ended_at == dose.dose_started_at == clock()
    assert status_of(app, session_id) == "recovery"
    page = text(nurse.get(url(session_id)))
    assert "BP at 40 min" in page and "Before discharge" in page and "End infusion" not in page


# --- who may -------------------------------------------------------------------------------------

WRITES = [("start", {}), ("overrides/start/BP_SOFT_GATE", {}), ("controlled-substance", {}), ("vitals", {}),
          ("alerts/1/acknowledge", {}), ("end", {}), ("resume", {}), ("discharge", {})]


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinators_and_admins_cannot_act_at_the_chair(app, cleared, login_as, role):
    client = login_as(role)
    assert client.get(url(cleared)).status_code == 403
    for action, data in WRITES:
        assert client.submit(url(cleared, action), data).status_code == 403, action
    assert status_of(app, cleared) == "cleared" and rows(app, DoseRecord, cleared) == []


def test_nurses_cannot_override_findings(cleared, login_as):
    assert login_as("nurse").submit(url(cleared, "overrides/start/BP_SOFT_GATE"), {}).status_code == 403


def test_the_start_reading_can_be_taken_at_the_minute_the_dose_started(app, cleared, login_as, clock):
    """The form takes minutes; a dose started at 10:00:30 has its start reading at "10:00"."""
    nurse = login_as("nurse")
    clock.advance(seconds=30)
    assert done(start(nurse, cleared))
    assert done(vitals(nurse, cleared, "10:00"))
    refused = vitals(nurse, cleared, "09:59")
    assert refused.status_code == 400 and "before the dose started" in text(refused)


def test_a_blood_pressure_override_covers_the_reading_it_was_given_for_not_a_new_one(app, clock, chairs,
                                                                                     make_user):
    from opsmgr.auth.models import StaffUser

    session_id = make_session(app, clock, cleared=False)
    doctor = make_user("physician")
    with app.app_context():
        session = db.session.get(InfusionSession, session_id)
        physician = db.session.get(StaffUser, doctor.id)
        change_status(session, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        response, _ = checklist.fill_checklist(session, clear_answers(clock(), systolic=150, diastolic=95),
                                               expected_version=0, actor=FACTORY_ACTOR, now=clock())
        checklist.override_finding(session, code="BP_SOFT_GATE", physician=physician, password=PASSWORD,
                                   reason="Reviewed: anxious on arrival, no symptoms.", now=clock())
        db.session.commit()
        gate, _ = gate_service.start_gate(session, now=clock(), infusion_minutes=40)
        assert gate.may_proceed and session.status == "cleared"

        clock.advance(minutes=5)
        checklist.fill_checklist(session, clear_answers(clock(), systolic=172, diastolic=99),
                                 expected_version=response.version, actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        gate, _ = gate_service.start_gate(session, now=clock(), infusion_minutes=40)
        assert [f.code for f in gate.open] == ["BP_SOFT_GATE"], "a new reading needs the physician again"
        assert "172/99" in gate.open[0].message

        checklist.override_finding(session, code="BP_SOFT_GATE", physician=physician, password=PASSWORD,
                                   reason="Rechecked 172/99; discussed; proceed with monitoring.", now=clock())
        db.session.commit()
        gate, _ = gate_service.start_gate(session, now=clock(), infusion_minutes=40)
        assert gate.may_proceed
        [row] = db.session.scalars(select(FindingOverride).where(FindingOverride.session_id == session_id)).all()
        assert row.finding["values"]["systolic"] == 172
    assert [e.action for e in events(app, "override.superseded")] == ["override.superseded"]


def test_a_checklist_finding_overridden_on_the_chair_page_clears_the_session(app, clock, chairs, login_as):
    """As on the checklist page: the last open checklist finding overridden at the chair clears the session,
    so the start is offered (the chair page had said "Clear" while the session stayed on the checklist)."""
    session_id = make_session(app, clock, cleared=False)
    with app.app_context():
        session = db.session.get(InfusionSession, session_id)
        change_status(session, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        checklist.fill_checklist(session, clear_answers(clock(), systolic=150, diastolic=95),
                                 expected_version=0, actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    assert status_of(app, session_id) == "checklist"
    physician = login_as("physician")
    assert done(physician.submit(url(session_id, "overrides/start/BP_SOFT_GATE"), fields(
        "override-start-BP_SOFT_GATE", dose_order=0, infusion_minutes=40, password=PASSWORD,
        reason="Known white-coat hypertension; recheck every 10 minutes.")))
    assert status_of(app, session_id) == "cleared"
    page = read(login_as("nurse").get(url(session_id)))
    assert "Clear: nothing stops the dose." in page and "Start dose: 36.2 mg" in page


# --- at the chair: record vitals from the top, at the time now -------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # markup only
def test_during_the_infusion_record_vitals_is_at_the_top_with_the_time_prefilled_to_now(infusing):
    session_id, nurse = infusing
    html = text(nurse.get(url(session_id)))
    top = html.index('data-testid="record-vitals-link"')
    assert html.index("<h1") < top < html.index('id="dose"')
    assert 'href="#record-vitals"' in html[top:top + 200] and 'id="record-vitals"' in html
    assert re.search(r'<input[^>]*name="vitals-taken_at"[^>]*value="10:00"', html)  # 15:00 UTC, clinic time


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # markup only
def test_before_the_dose_there_is_no_record_vitals_link(cleared, login_as):
    assert 'data-testid="record-vitals-link"' not in text(login_as("nurse").get(url(cleared)))
