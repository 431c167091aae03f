"""The pre-session checklist pages: saving answers, the evaluation, overrides, conflicts, ranges and audit."""
import json
import re
from datetime import date
from html import unescape

import pytest
from sqlalchemy import select, update

from opsmgr.audit.models import AuditEvent
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.extensions import db
from opsmgr.gates.models import FindingOverride
from opsmgr.patients import service as patients
from opsmgr.patients.models import Patient
from opsmgr.schedule import service as schedule
from opsmgr.scores.models import Score
from opsmgr.sessions.models import InfusionSession
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, order_series

TODAY = date(2026, 11, 26)  # the frozen clock is 15:00 UTC, 10:00 in the clinic (America/New_York)

#: A complete checklist that clears an IV session at 10:00 clinic time (the patient's escort typed in).
CLEAR = {
    "systolic": "120", "diastolic": "80", "heart_rate": "72", "spo2": "98", "temperature_c": "36.8",
    "respiratory_rate": "14", "vitals_taken_at": "2026-11-26T09:55", "weight_kg": "72.5",
    "medication_answer": "none", "new_diagnoses": "no", "cardio_cerebrovascular_event": "no",
    "psychosis_symptoms": "no", "mania_symptoms": "no", "substance_use_in_window": "no",
    "last_solid_food_at": "2026-11-26T02:00", "last_clear_liquid_at": "2026-11-26T07:30",
    "escort_name": "Jo Escort", "escort_phone": "555 010 0100", "consent_reconfirmed": "yes",
    **{f"phq9_{n}": "0" for n in range(1, 10)}, "phq9_difficulty": "0",
    **{f"gad7_{n}": "0" for n in range(1, 8)},
    "suicide_risk": "negative", "willingness": "yes", "intention": "To feel like myself again.",
}


def checked_in_session(app, clock, **patient_fields):
    """A patient with consent on file, on an IV induction starting today at 11:00, checked in."""
    with app.app_context():
        create_chairs(2)
        patient = create_patient(now=clock(), legal_name="Casey Checklist", **patient_fields)
        patients.record_consent(db.session.get(Patient, patient.id), consent_on=date(2026, 11, 1),
                                form_version="v3", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        series = order_series(patient_id=patient.id, now=clock(), start_on=TODAY, preferred_time="11:00")
        session = series.sessions[0]
        schedule.change_status(session, "checked_in", reason="", actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        return session.id


@pytest.fixture
def session_id(app, clock):
    return checked_in_session(app, clock)


def url(session_id, override=False):
    return f"/sessions/{session_id}/checklist" + ("/override" if override else "")


def save(client, session_id, answers, version=None):
    data = {"version": str(current_version(client.application, session_id) if version is None else version),
            **answers}
    return client.submit(url(session_id), data)


def current_version(app, session_id):
    with app.app_context():
        return db.session.scalar(select(ChecklistResponse.version).where(ChecklistResponse.session_id == session_id)) \
            or 0


def status_of(app, session_id):
    with app.app_context():
        return db.session.scalar(select(InfusionSession.status).where(InfusionSession.id == session_id))


def saved(app, session_id):
    with app.app_context():
        row = db.session.execute(select(ChecklistResponse.__table__)
                                 .where(ChecklistResponse.session_id == session_id)).one_or_none()
        return None if row is None else row._mapping


def overrides(app, session_id):
    with app.app_context():
        return db.session.execute(select(FindingOverride.code, FindingOverride.reason)
                                  .where(FindingOverride.session_id == session_id)).all()


def audit(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def input_value(html, name):
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def checked(html, name):
    return re.findall(rf'<input[^>]*checked[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', html) or \
        re.findall(rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"[^>]*checked', html)


def error_at(html, field_id):
    match = re.search(rf'<div id="{re.escape(field_id)}-error"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else None


# --- the clear path and the status it sets ---------------------------------------------------------


def test_a_complete_clear_checklist_is_cleared_and_the_session_becomes_cleared(app, session_id, login_as):
    nurse = login_as("nurse")
    response = save(nurse, session_id, CLEAR)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert status_of(app, session_id) == "cleared"
    html = nurse.get(response.headers["Location"]).get_data(as_text=True)
    assert "Outcome: <strong>Cleared</strong>" in html
    assert "not answered yet" not in html
    assert [e.details and json.loads(e.details)["to"] for e in audit(app, "session.cleared")] == ["cleared"]
    assert [json.loads(e.details)["to"] for e in audit(app, "session.checklist")] == ["checklist"]


def test_the_first_partial_save_moves_a_checked_in_session_to_checklist(app, session_id, login_as):
    assert save(login_as("nurse"), session_id, {"systolic": "120", "diastolic": "80"}).status_code == 302
    assert status_of(app, session_id) == "checklist"


def test_the_form_starts_empty_nothing_pre_filled(session_id, login_as, app, clock):
    with app.app_context():
        patient_id = db.session.get(InfusionSession, session_id).patient_id
        patient = db.session.get(Patient, patient_id)
        patient.escort_name, patient.escort_phone = "Usual Escort", "555 000 1111"
        db.session.commit()
    html = login_as("nurse").get(url(session_id)).get_data(as_text=True)
    assert input_value(html, "vitals_taken_at") == "" and input_value(html, "systolic") == ""
    assert input_value(html, "escort_name") == "" and input_value(html, "escort_phone") == ""
    assert "The usual escort: Usual Escort, 555 000 1111" in html, "shown as a choice to confirm"
    assert " checked" not in html, "no radio answered by default"
    assert "Not started: nothing has been saved yet" in html
    assert "Signed consent on file: 01 November 2026 (form v3)" in html


def test_confirming_the_usual_escort_stores_the_record_s_escort(app, session_id, login_as):
    with app.app_context():
        patient = db.session.get(Patient, db.session.get(InfusionSession, session_id).patient_id)
        patient.escort_name, patient.escort_phone = "Usual Escort", "555 000 1111"
        db.session.commit()
    nurse = login_as("nurse")
    answers = {**CLEAR, "escort_name": "", "escort_phone": "", "escort_source": "usual"}
    assert save(nurse, session_id, answers).status_code == 302
    assert (saved(app, session_id)["escort_name"], saved(app, session_id)["escort_phone"]) == (
        "Usual Escort", "555 000 1111")
    assert status_of(app, session_id) == "cleared"
    both = save(nurse, session_id, {**answers, "escort_name": "Someone Typed"})
    assert both.status_code == 400 and "You chose the usual escort and also typed one" in both.get_data(as_text=True)


RIDE = "Medical transport booked, Ride Co., pick-up 14:00"
NO_ESCORT = {**CLEAR, "escort_source": "none", "escort_name": "", "escort_phone": "", "escort_arrangement": RIDE}


def finding_item(html, code):
    match = re.search(rf'<li class="finding [^"]*" data-code="{code}">(.*?)</li>', html, re.S)
    return match.group(1) if match else None


def test_no_escort_today_with_a_ride_home_is_blocked_until_a_physician_accepts_that_ride(app, session_id,
                                                                                        login_as):
    nurse = login_as("nurse")
    response = save(nurse, session_id, NO_ESCORT)
    assert response.status_code == 302, response.get_data(as_text=True)
    row = saved(app, session_id)
    assert (row["escort_arrangement"], row["escort_name"], row["escort_phone"]) == (RIDE, "", "")
    assert status_of(app, session_id) == "checklist"
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Outcome: <strong>Blocked</strong>" in html and checked(html, "escort_source") == ["none"]
    assert re.search(rf'<textarea[^>]*name="escort_arrangement"[^>]*>\s*{RIDE}</textarea>', html)
    item = unescape(finding_item(html, "ESCORT_ALTERNATIVE_ARRANGEMENT"))
    assert RIDE in item and "Stop — a physician may override" in item

    physician = login_as("physician")
    accepted = physician.submit(url(session_id, True), {"code": "ESCORT_ALTERNATIVE_ARRANGEMENT",
                                                        "password": physician.user.password,
                                                        "reason": "Ride Co. confirmed the pick-up by phone"})
    assert accepted.status_code == 302
    assert overrides(app, session_id) == [("ESCORT_ALTERNATIVE_ARRANGEMENT", "Ride Co. confirmed the pick-up by phone")]
    assert status_of(app, session_id) == "cleared"
    assert "Every open finding has a physician override" in physician.get(url(session_id)).get_data(as_text=True)

    # The override covers that ride: another one needs the physician again.
    save(nurse, session_id, {**NO_ESCORT, "escort_arrangement": "Taxi home, booked by the patient"})
    item = finding_item(nurse.get(url(session_id)).get_data(as_text=True), "ESCORT_ALTERNATIVE_ARRANGEMENT")
    assert "Stop — a physician may override" in item and "Overridden by" not in item


@pytest.mark.parametrize("arrangement", ["", "Taxi"])
def test_no_escort_today_without_the_ride_home_is_an_error_at_the_field_keeping_what_was_typed(
        app, session_id, login_as, arrangement):
    response = save(login_as("nurse"), session_id, {**NO_ESCORT, "escort_arrangement": arrangement})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Describe how the patient gets home (at least a few words)" in error_at(html, "escort_arrangement")
    assert checked(html, "escort_source") == ["none"] and checked(html, "psychosis_symptoms") == ["no"]
    assert input_value(html, "systolic") == "120" and "To feel like myself again." in html
    assert re.search(rf'<textarea[^>]*name="escort_arrangement"[^>]*>\s*{arrangement}</textarea>', html)
    assert saved(app, session_id) is None and status_of(app, session_id) == "checked_in"


@pytest.mark.parametrize("changes,field,message", [
    ({"escort_name": "Jo Escort"}, "escort_source", "You chose “No escort today” and also typed an escort"),
    ({"escort_source": "other", "escort_name": "Jo Escort", "escort_phone": "555 010 0100"}, "escort_arrangement",
     "You described another way home"),
])
def test_an_escort_and_a_ride_home_together_are_refused_at_the_field(app, session_id, login_as, changes, field,
                                                                     message):
    response = save(login_as("nurse"), session_id, {**NO_ESCORT, **changes})
    assert response.status_code == 400 and message in unescape(error_at(response.get_data(as_text=True), field))
    assert saved(app, session_id) is None


def test_choosing_an_escort_again_clears_the_ride_home(app, session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, NO_ESCORT)
    assert save(nurse, session_id, {**CLEAR, "escort_source": "other"}).status_code == 302
    row = saved(app, session_id)
    assert (row["escort_arrangement"], row["escort_name"]) == (None, "Jo Escort")
    assert status_of(app, session_id) == "cleared"


# --- overrides ----------------------------------------------------------------------------------------


def test_bp_150_95_needs_a_physician_whose_override_clears_the_session(app, session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, {**CLEAR, "systolic": "150", "diastolic": "95"})
    assert status_of(app, session_id) == "checklist"
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Outcome: <strong>Needs physician</strong>" in html and "Blood pressure 150/95" in html
    assert 'name="password"' not in html, "nurses see no override form"
    assert nurse.submit(url(session_id, True), {"code": "BP_SOFT_GATE", "password": nurse.user.password,
                                                "reason": "Anxious, repeat reading fine"}).status_code == 403

    physician = login_as("physician")
    page = physician.get(url(session_id)).get_data(as_text=True)
    assert 'name="code" value="BP_SOFT_GATE"' in page
    wrong = physician.submit(url(session_id, True), {"code": "BP_SOFT_GATE", "password": "not my password",
                                                     "reason": "Known white-coat hypertension"})
    body = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "The password is not correct" in error_at(body, "override-bp_soft_gate-password")
    assert overrides(app, session_id) == [] and status_of(app, session_id) == "checklist"
    assert [json.loads(e.details)["reason"] for e in audit(app, "override.refused")] == ["password"]

    no_reason = physician.submit(url(session_id, True), {"code": "BP_SOFT_GATE", "password": physician.user.password,
                                                         "reason": ""})
    assert no_reason.status_code == 400 and "Give the reason for overriding." in no_reason.get_data(as_text=True)

    done = physician.submit(url(session_id, True), {"code": "BP_SOFT_GATE", "password": physician.user.password,
                                                    "reason": "Known white-coat hypertension"})
    assert done.status_code == 302
    assert overrides(app, session_id) == [("BP_SOFT_GATE", "Known white-coat hypertension")]
    assert status_of(app, session_id) == "cleared"
    after = physician.get(url(session_id)).get_data(as_text=True)
    assert "Overridden</strong> by" in after and "Known white-coat hypertension" in after
    assert "Every open finding has a physician override" in after
    assert [json.loads(e.details)["code"] for e in audit(app, "override.recorded")] == ["BP_SOFT_GATE"]


def test_bp_185_95_is_blocked_and_a_physician_may_override_it(app, session_id, login_as):
    save(login_as("nurse"), session_id, {**CLEAR, "systolic": "185", "diastolic": "95"})
    physician = login_as("physician")
    assert "Outcome: <strong>Blocked</strong>" in physician.get(url(session_id)).get_data(as_text=True)
    response = physician.submit(url(session_id, True), {"code": "BP_HARD_GATE", "password": physician.user.password,
                                                        "reason": "Repeat 178/94 after rest; chronic"})
    assert response.status_code == 302
    assert status_of(app, session_id) == "cleared"


def test_a_positive_pregnancy_is_absolute_and_no_physician_can_override_it(app, clock, login_as):
    session_id = checked_in_session(app, clock, pregnancy_possible=True)
    nurse = login_as("nurse")
    missing = save(nurse, session_id, CLEAR)
    unanswered = nurse.get(missing.headers["Location"]).get_data(as_text=True)
    assert "<li>Pregnancy status or test result</li>" in unanswered
    save(nurse, session_id, {**CLEAR, "pregnancy_status": "positive"})
    physician = login_as("physician")
    html = physician.get(url(session_id)).get_data(as_text=True)
    assert "Pregnancy is positive: no dose." in html and "Stop — cannot be overridden" in html
    assert 'name="code" value="PREGNANCY_POSITIVE"' not in html, "no override form for an absolute finding"
    refused = physician.submit(url(session_id, True), {"code": "PREGNANCY_POSITIVE",
                                                       "password": physician.user.password,
                                                       "reason": "Patient insists on treatment"})
    assert refused.status_code == 400
    assert "cannot be overridden by anyone" in refused.get_data(as_text=True)
    assert overrides(app, session_id) == [] and status_of(app, session_id) == "checklist"


def test_a_negative_pregnancy_test_clears(app, clock, login_as):
    session_id = checked_in_session(app, clock, pregnancy_possible=True)
    save(login_as("nurse"), session_id, {**CLEAR, "pregnancy_status": "test_negative"})
    assert status_of(app, session_id) == "cleared"


def test_overriding_a_finding_that_is_not_open_is_refused_with_a_message(app, session_id, login_as):
    save(login_as("nurse"), session_id, CLEAR)
    physician = login_as("physician")
    response = physician.submit(url(session_id, True), {"code": "BP_SOFT_GATE", "password": physician.user.password,
                                                        "reason": "Nothing to override here"})
    assert response.status_code == 400 and "not open any more" in response.get_data(as_text=True)


def test_a_cleared_session_keeps_its_status_when_later_answers_are_not_clear_and_says_so(app, session_id,
                                                                                        login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, CLEAR)
    save(nurse, session_id, {**CLEAR, "systolic": "150", "diastolic": "95"})
    assert status_of(app, session_id) == "cleared"
    assert "Marked cleared, but the latest answers are not clear" in nurse.get(url(session_id)).get_data(as_text=True)


# --- partial saves and conflicts ------------------------------------------------------------------------


def test_a_partial_save_is_there_after_signing_out_and_in_again(app, session_id, login_as, make_user):
    nurse = login_as("nurse")
    partial = {"systolic": "128", "heart_rate": "66", "escort_name": "Jo Escort", "psychosis_symptoms": "no",
               "phq9_1": "2", "medication_answer": "changes", "medication_rows-0-name": "Sertraline",
               "medication_rows-0-med_class": "ssri_snri", "medication_rows-0-change": "started",
               "vitals_taken_at": "2026-11-26T09:50", "intention": "Less dark days"}
    assert save(nurse, session_id, partial).status_code == 302
    nurse.logout()
    html = login_as("nurse").get(url(session_id)).get_data(as_text=True)
    assert input_value(html, "systolic") == "128" and input_value(html, "heart_rate") == "66"
    assert input_value(html, "escort_name") == "Jo Escort"
    assert input_value(html, "vitals_taken_at") == "2026-11-26T09:50"
    assert input_value(html, "medication_rows-0-name") == "Sertraline"
    assert input_value(html, "medication_rows-2-name") == "", "blank rows follow the saved ones"
    assert checked(html, "psychosis_symptoms") == ["no"] and checked(html, "phq9_1") == ["2"]
    assert checked(html, "mania_symptoms") == []
    assert "Less dark days" in html
    assert "Sertraline (ssri-snri) was started." in html
    row = saved(app, session_id)
    assert row["medication_changes"] == [{"name": "Sertraline", "med_class": "ssri_snri", "change": "started"}]
    with app.app_context():  # the scales are kept in the score table, partly answered as typed
        phq9 = db.session.scalars(select(Score).where(Score.session_id == session_id)).one()
        assert (phq9.instrument, phq9.source, phq9.total) == ("PHQ-9", "checklist", None)
        assert phq9.items == [2, None, None, None, None, None, None, None, None]


def test_a_stale_version_is_a_409_showing_both_answers_and_nothing_is_saved(app, session_id, login_as):
    first, second = login_as("nurse"), login_as("nurse")
    opened = first.get(url(session_id)).get_data(as_text=True)
    assert input_value(opened, "version") == "0"
    assert save(second, session_id, {"systolic": "130"}, version=0).status_code == 302
    before = dict(saved(app, session_id))
    stale = save(first, session_id, {"systolic": "145", "heart_rate": "80"}, version=0)
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "Not saved: this checklist changed while you were working on it" in html
    assert re.search(r"<th scope=\"row\">Systolic</th><td>145</td><td>130</td>", html)
    assert input_value(html, "systolic") == "145", "the user's answers stay in the form"
    assert input_value(html, "version") == str(before["version"]), "rebased: saving again is deliberate"
    assert dict(saved(app, session_id)) == before
    # An older saved version is refused the same way.
    again = save(second, session_id, {"systolic": "131"}, version=before["version"])
    assert again.status_code == 302
    assert save(first, session_id, {"systolic": "150"}, version=before["version"]).status_code == 409
    assert saved(app, session_id)["systolic"] == 131


# --- plausibility at the field ----------------------------------------------------------------------

BOUNDS = [("systolic", 50, 260), ("diastolic", 30, 160), ("heart_rate", 20, 220), ("spo2", 50, 100),
          ("temperature_c", 33, 42), ("respiratory_rate", 4, 60), ("weight_kg", 25, 350)]
CASES = [(name, value, ok) for name, low, high in BOUNDS
         for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False))]


@pytest.mark.parametrize("name,value,ok", CASES, ids=[f"{n}={v}" for n, v, _ in CASES])
def test_each_plausibility_bound_is_checked_at_the_field_keeping_every_other_answer(app, session_id, login_as,
                                                                                    name, value, ok):
    others = {"escort_name": "Jo Escort", "psychosis_symptoms": "no", "intention": "Feel better"}
    if name != "heart_rate":
        others["heart_rate"] = "71"
    response = save(login_as("nurse"), session_id, {**others, name: str(value)}, version=0)
    if ok:
        assert response.status_code == 302
        assert float(saved(app, session_id)[name]) == value
        return
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "check for a typo" in error_at(html, name)
    assert input_value(html, name) == str(value)
    assert input_value(html, "escort_name") == "Jo Escort" and checked(html, "psychosis_symptoms") == ["no"]
    assert "Feel better" in html and "Not saved: correct the answers marked below" in html
    assert saved(app, session_id) is None and status_of(app, session_id) == "checked_in"


@pytest.mark.parametrize("answers,field,message", [
    ({"vitals_taken_at": "2026-11-26T10:01"}, "vitals_taken_at", "in the future"),
    ({"last_solid_food_at": "2026-11-18T10:00"}, "last_solid_food_at", "more than 7 days ago"),
    ({"last_clear_liquid_at": "yesterday"}, "last_clear_liquid_at", "Enter a date and time"),
    ({"systolic": "1e9"}, "systolic", "Not a valid integer"),
    ({"temperature_c": "NaN"}, "temperature_c", "Enter a number"),
    ({"temperature_c": "36.75"}, "temperature_c", "one decimal place"),
    ({"new_diagnoses": "maybe"}, "new_diagnoses", "Choose one of the answers"),
    ({"phq9_3": "4"}, "phq9_3", "Choose one of the answers"),
    ({"medication_answer": "changes"}, "medication_answer", "List the change below"),
    ({"medication_answer": "none", "medication_rows-0-name": "Xanax"}, "medication_answer", "You chose “No changes”"),
    ({"medication_answer": "changes", "medication_rows-0-name": "Xanax"}, "medication_rows-0-med_class",
     "Enter the class too"),
    ({"escort_phone": "call me"}, "escort_phone", "Use digits"),
    ({"intention": "x" * 2001}, "intention", "2000"),
])
def test_bad_input_is_an_error_at_the_field_never_a_500(app, session_id, login_as, answers, field, message):
    response = save(login_as("nurse"), session_id, {"heart_rate": "70", **answers}, version=0)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in (error_at(html, field) or ""), html[html.find(f'id="{field}-error"') - 200:][:600]
    assert input_value(html, "heart_rate") == "70"
    assert saved(app, session_id) is None


def test_a_time_on_the_current_minute_is_accepted(app, session_id, login_as):
    assert save(login_as("nurse"), session_id, {"vitals_taken_at": "2026-11-26T10:00"}, version=0).status_code == 302


# --- PHQ-9, GAD-7 and the physician task -----------------------------------------------------------------


def test_phq9_and_gad7_totals_and_bands_are_shown_after_saving(session_id, login_as):
    nurse = login_as("nurse")
    phq9 = dict(zip([f"phq9_{n}" for n in range(1, 10)], "121010110", strict=True))
    gad7 = dict(zip([f"gad7_{n}" for n in range(1, 8)], "3322211", strict=True))
    save(nurse, session_id, {**CLEAR, **phq9, **gad7, "phq9_difficulty": "1"})
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "PHQ-9 total 7 of 27: mild." in html
    assert "GAD-7 total 14 of 21: moderate." in html
    assert 'data-testid="physician-task"' not in html


def test_phq9_item9_above_zero_shows_a_same_day_physician_task_banner(app, session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, {**CLEAR, "phq9_9": "1", "phq9_difficulty": "1"})
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert 'data-testid="physician-task"' in html and "Same-day physician task" in html
    assert "PHQ-9 item 9 (thoughts of death or self-harm) scored 1" in html
    assert "Outcome: <strong>Needs physician</strong>" in html
    assert status_of(app, session_id) == "checklist"


def test_item9_shows_the_banner_as_soon_as_it_is_saved_even_before_the_rest_of_the_phq9(session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, {"phq9_9": "2"})
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Same-day physician task" in html and "scored 2" in html
    assert "<li>PHQ-9 (all nine items)</li>" in html


def test_a_moderate_suicide_risk_screen_blocks_and_says_to_call_the_physician(app, session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, {**CLEAR, "suicide_risk": "moderate"})
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Call the physician now" in html and "Outcome: <strong>Blocked</strong>" in html


# --- the previous session ------------------------------------------------------------------------------


def test_the_recheck_shows_medication_changes_since_the_previous_session_and_its_answers(app, clock, session_id,
                                                                                        login_as):
    save(login_as("nurse"), session_id, CLEAR)
    with app.app_context():
        first = db.session.get(InfusionSession, session_id)
        second_id = next(s.id for s in first.series.sessions if s.sequence == 2)
        patient = db.session.get(Patient, first.patient_id)
        # The dose itself is the infusion feature's business: mark the first session held directly.
        db.session.execute(update(InfusionSession).where(InfusionSession.id == session_id)
                           .values(status="discharged"))
        patients.add_medication(patient, name="Lorazepam", med_class="benzodiazepine", started_on=date(2026, 11, 27),
                                stopped_on=None, actor=FACTORY_ACTOR, now=clock())
        patients.add_medication(patient, name="Old pill", med_class="other", started_on=date(2026, 1, 1),
                                stopped_on=date(2026, 1, 2), actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        second_day = db.session.get(InfusionSession, second_id).starts_at
    clock.now = second_day.replace(hour=15, minute=0)
    with app.app_context():
        schedule.change_status(db.session.get(InfusionSession, second_id), "checked_in", reason="",
                               actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    html = login_as("nurse").get(url(second_id)).get_data(as_text=True)
    diff = html[html.find('data-testid="medication-diff"'):]
    assert "Lorazepam" in diff[:400] and "started on 27 Nov 2026" in diff[:400] and "Old pill" not in diff[:400]
    assert "Previous session: Thursday 26 November 2026" in html
    assert "Previous session: No." in html
    previous = html[html.find('data-testid="previous-answers"'):]
    assert "No changes" in previous and "72.5" in previous


def test_the_first_session_lists_the_current_medications_on_the_record(app, clock, session_id, login_as):
    with app.app_context():
        patient = db.session.get(Patient, db.session.get(InfusionSession, session_id).patient_id)
        patients.add_medication(patient, name="Bupropion", med_class="other", started_on=date(2025, 3, 1),
                                stopped_on=None, actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
    html = login_as("nurse").get(url(session_id)).get_data(as_text=True)
    assert "This is the patient's first session" in html and "Bupropion" in html


# --- states, roles and the audit trail --------------------------------------------------------------------


def test_before_check_in_the_checklist_cannot_be_saved(app, clock, login_as):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock())
        session_id = order_series(patient_id=patient.id, now=clock(), start_on=TODAY,
                                  preferred_time="11:00").sessions[0].id
    nurse = login_as("nurse")
    page = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Check the patient in first" in page and "<fieldset disabled>" in page
    response = save(nurse, session_id, {"systolic": "120"}, version=0)
    assert response.status_code == 409 and "only after check-in" in response.get_data(as_text=True)
    assert saved(app, session_id) is None and status_of(app, session_id) == "scheduled"


def other_day_alert(html):
    found = re.search(r'<div class="alert ([^"]*)" role="(\w+)" data-testid="other-day">(.*?)</div>', html, re.S)
    assert found, "the other-day message is on the page"
    return found.group(1), found.group(2), " ".join(re.sub(r"<[^>]+>", " ", found.group(3)).split())


def test_the_checklist_of_a_session_checked_in_on_another_day_is_read_only_and_a_save_is_refused(
        app, clock, session_id, login_as):
    clock.advance(days=1)  # Friday 27 November, 10:00 in the clinic; the session was Thursday's
    nurse = login_as("nurse")
    page = nurse.get(url(session_id)).get_data(as_text=True)
    _, role, text = other_day_alert(page)
    assert role == "status" and "<fieldset disabled>" in page and ">Save</button>" not in page
    assert text.startswith("This session is booked for Thu 26 Nov, not today, and it is past check-in, so it "
                           "cannot be moved.")
    response = save(nurse, session_id, CLEAR, version=0)  # a crafted (or stale) post
    assert response.status_code == 409
    classes, role, text = other_day_alert(response.get_data(as_text=True))
    assert "alert-danger" in classes and role == "alert"
    assert text.startswith("Not saved. This session is booked for Thu 26 Nov, not today")
    assert saved(app, session_id) is None and status_of(app, session_id) == "checked_in"
    assert audit(app, "checklist.saved") == []
    assert json.loads(audit(app, "checklist.viewed")[-1].details) == {"status": 409}


def test_the_checklist_of_a_scheduled_session_on_another_day_offers_to_move_it_to_today(app, clock, login_as):
    with app.app_context():
        create_chairs(1)
        patient = create_patient(now=clock())
        session_id = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 12, 8),
                                  preferred_time="11:00").sessions[0].id
    page = login_as("nurse").get(url(session_id)).get_data(as_text=True)
    _, _, text = other_day_alert(page)
    assert text.startswith("This session is booked for Tue 8 Dec, not today. Move it to today first. Move it to today")
    assert f'action="/sessions/{session_id}/move-to-today"' in page


def test_the_checklist_is_saved_on_the_sessions_own_day_until_its_last_minute(app, clock, session_id, login_as):
    clock.advance(hours=13, minutes=59)  # 23:59 on Thursday in the clinic
    assert save(login_as("nurse"), session_id, {"systolic": "120"}, version=0).status_code == 302
    assert saved(app, session_id)["systolic"] == 120


@pytest.mark.parametrize("role,expected", [("coordinator", 403), ("admin", 403), ("nurse", 200), ("physician", 200)])
def test_only_clinicians_see_the_checklist(session_id, login_as, role, expected):
    response = login_as(role).get(url(session_id))
    assert response.status_code == expected
    if expected == 403:
        assert "Casey Checklist" not in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_coordinators_and_admins_cannot_save_the_checklist(app, session_id, login_as, role):
    assert save(login_as(role), session_id, CLEAR, version=0).status_code == 403
    assert saved(app, session_id) is None


def test_anonymous_is_sent_to_login(session_id, client):
    assert client.get(url(session_id)).headers["Location"].startswith("/login")


def test_a_missing_session_is_404(login_as):
    assert login_as("nurse").get(url(999999)).status_code == 404


def test_every_read_and_write_is_audited(app, session_id, login_as):
    nurse = login_as("nurse")
    nurse.get(url(session_id))
    save(nurse, session_id, {**CLEAR, "systolic": "150", "diastolic": "95"})
    nurse.get(url(session_id))
    viewed, saves = audit(app, "checklist.viewed"), audit(app, "checklist.saved")
    assert [(e.object_id, e.username) for e in viewed] == [(str(session_id), nurse.user.username)] * 2
    assert len(saves) == 1 and json.loads(saves[0].details)["outcome"] == "needs_physician"
    assert "systolic" in json.loads(saves[0].details)["fields"]
    assert all(e.patient_id is not None for e in viewed + saves)


# --- progress, the first open item, and Start dose when cleared --------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # markup only
def test_the_progress_is_worded_per_section_and_jumps_to_the_first_open_item(session_id, login_as):
    nurse = login_as("nurse")
    before = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Saved so far: 0 of 16 items answered" in before
    assert 'href="#systolic" data-testid="first-open"' in before and 'id="systolic"' in before
    save(nurse, session_id, {name: CLEAR[name] for name in ("systolic", "diastolic", "heart_rate", "spo2",
                                                            "weight_kg", "medication_answer")})
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert "Saved so far: 2 of 16 items answered" in html
    page = " ".join(re.sub(r"<[^>]+>", " ", unescape(html)).split())
    assert "Vital signs : 1 open" in page and "Weight : ✓ done" in page and "Contraindication recheck : 5 open" in page
    # the vital signs still missing start at the temperature: the link goes straight there
    assert 'href="#temperature_c" data-testid="first-open"' in html and 'id="temperature_c"' in html
    for anchor in re.findall(r'<li class="list-inline-item[^"]*"><a href="#([^"]+)"', html):
        assert f'id="{anchor}"' in html


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # markup only
def test_start_dose_is_offered_on_the_checklist_only_once_it_clears(app, session_id, login_as):
    nurse = login_as("nurse")
    save(nurse, session_id, {"systolic": "120", "diastolic": "80"})
    assert 'data-testid="start-dose-link"' not in nurse.get(url(session_id)).get_data(as_text=True)
    save(nurse, session_id, CLEAR)
    html = nurse.get(url(session_id)).get_data(as_text=True)
    assert f'href="/sessions/{session_id}/infusion#start-gate">Start dose</a>' in html
    assert "Every item is answered." in html and 'data-testid="first-open"' not in html
    assert 'id="start-gate"' in nurse.get(f"/sessions/{session_id}/infusion").get_data(as_text=True)


def test_the_phq9_difficulty_question_counts_as_part_of_the_phq9_item():
    from types import SimpleNamespace

    from opsmgr.checklist.progress import checklist_progress
    from opsmgr.rules.findings import unanswered
    evaluation = SimpleNamespace(unanswered=(unanswered("phq9_difficulty", "PHQ-9 difficulty question"),), findings=())
    progress = checklist_progress(evaluation, {"systolic", "weight_kg", "phq9_1", "willingness"})
    assert (progress.summary, progress.first_open) == ("3 of 4 items answered", "phq9_difficulty")
    assert [(s.title, s.open) for s in progress.sections] == [("Vital signs", 0), ("Weight", 0), ("PHQ-9", 1),
                                                              ("The patient's own wish", 0)]
