"""Patient pages: search, registration, the chart, edits with a version check, clinical background."""
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm.exc import StaleDataError

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.patients import service
from opsmgr.patients.models import Patient, PatientMedication, PatientSearchWord
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, order_series
from tests.sql import count_statements

MONDAY = date(2026, 11, 30)  # the first Monday after the frozen clock (Thu 2026-11-26)

NEW = {
    "mrn": "KC-00042", "legal_name": "Ada Quill", "preferred_name": "Addie", "date_of_birth": "1984-03-09",
    "sex_at_birth": "female", "pregnancy_possible": "yes", "phone": "+1 (503) 555-0147",
    "email": "ada.quill@example.org", "reminder_channel": "sms", "contact_consent_on": "2026-11-20",
    "escort_name": "Tom Quill", "escort_phone": "503 555 0188", "indication": "trd",
    "indication_detail": "Recurrent episodes since 2015", "failed_trials": "3", "allergies": "Penicillin (rash)",
}


# --- helpers ------------------------------------------------------------------------------------


def patient_by_mrn(app, mrn):
    with app.app_context():
        return db.session.scalar(select(Patient).where(Patient.mrn == mrn))


def patient_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Patient))


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).all()


def make_patient(app, clock, **fields):
    with app.app_context():
        patient = create_patient(now=clock(), **fields)
        return patient.id


def add_background(app, clock, patient_id, count):
    """`count` weights, medications and contraindications for one patient."""
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        for n in range(count):
            day = date(2020, 1, 1) + timedelta(days=n)
            service.add_weight(patient, kg=Decimal("70.0") + n % 50, measured_on=day, actor=FACTORY_ACTOR,
                               now=clock())
            service.add_medication(patient, name=f"Drug {n}", med_class="ssri_snri", started_on=day,
                                   stopped_on=None, actor=FACTORY_ACTOR, now=clock())
            service.add_contraindication(patient, kind="other", detail=f"Note {n}", noted_on=day,
                                         actor=FACTORY_ACTOR, now=clock())
        db.session.commit()


def add_medication(app, clock, patient_id, name="Sertraline", started_on=date(2025, 6, 1)):
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        medication = service.add_medication(patient, name=name, med_class="ssri_snri", started_on=started_on,
                                            stopped_on=None, actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        return medication.id


def body(response):
    return response.get_data(as_text=True)


def main(html):
    return html.split('<main', 1)[1]


def field_error(html, name):
    """The error text shown next to one field, or None."""
    match = re.search(rf'<div id="{re.escape(name)}-error"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", " ", match.group(1)) if match else None


def chart_rows(html):
    return len(re.findall(r">Open chart<", html))




# --- registration -------------------------------------------------------------------------------


def test_nurse_registers_a_patient_and_lands_on_the_chart(app, login_as):
    nurse = login_as("nurse")
    response = nurse.submit("/patients/new", NEW)
    assert response.status_code == 302
    patient = patient_by_mrn(app, "KC-00042")
    assert response.headers["Location"].endswith(f"/patients/{patient.id}")
    assert (patient.legal_name, patient.preferred_name, patient.date_of_birth, patient.pregnancy_possible,
            patient.reminder_channel, patient.contact_consent_on, patient.failed_trials, patient.allergies) == \
        ("Ada Quill", "Addie", date(1984, 3, 9), True, "sms", date(2026, 11, 20), 3, "Penicillin (rash)")
    created = events(app, "patient.created")[-1]
    assert (created.patient_id, created.username) == (patient.id, nurse.user.username)
    chart = body(nurse.get(f"/patients/{patient.id}"))
    assert "treatment-resistant (≥2 failed trials)" in chart
    assert "Ada Quill (Addie)" in chart and "(age 42)" in chart


def test_one_failed_trial_is_not_labelled_treatment_resistant(app, login_as):
    nurse = login_as("nurse")
    nurse.submit("/patients/new", {**NEW, "failed_trials": "1"})
    patient = patient_by_mrn(app, "KC-00042")
    assert "treatment-resistant" not in body(nurse.get(f"/patients/{patient.id}"))


BAD_REGISTRATIONS = [
    ("date_of_birth", {"date_of_birth": "2026-02-30"}, "Not a valid date value", "2026-02-30"),
    ("date_of_birth", {"date_of_birth": "2026-11-27"}, "cannot be in the future", "2026-11-27"),
    ("date_of_birth", {"date_of_birth": "1899-12-31"}, "from 1900 onwards", "1899-12-31"),
    ("date_of_birth", {"date_of_birth": ""}, "This field is required", None),
    ("email", {"email": "ada.quill.example.org"}, "Enter an email address", "ada.quill.example.org"),
    ("mrn", {"mrn": "K1"}, "3 to 32 letters, digits or dashes", "K1"),
    ("mrn", {"mrn": "KC 00042!"}, "3 to 32 letters, digits or dashes", "KC 00042!"),
    ("mrn", {"mrn": "K" * 33}, "3 to 32 letters, digits or dashes", "K" * 33),
    ("email", {"reminder_channel": "email", "email": ""}, "Email reminders need an email address", None),
    ("phone", {"reminder_channel": "sms", "phone": ""}, "SMS reminders need a phone number", None),
    ("contact_consent_on", {"contact_consent_on": ""}, "date the patient agreed to reminders", None),
    ("contact_consent_on", {"contact_consent_on": "2026-12-01"}, "in the future", "2026-12-01"),
    ("failed_trials", {"failed_trials": "-1"}, "between 0 and 50", "-1"),
    ("failed_trials", {"failed_trials": "51"}, "between 0 and 50", "51"),
    ("failed_trials", {"failed_trials": "two"}, "Not a valid integer value", "two"),
    ("pregnancy_possible", {"pregnancy_possible": "maybe"}, "Choose yes or no", None),
    ("sex_at_birth", {"sex_at_birth": ""}, "This field is required", None),
    ("indication", {"indication": "migraine"}, "Not a valid choice", None),
    ("phone", {"phone": "call me maybe"}, "Enter a phone number like", "call me maybe"),
]


@pytest.mark.parametrize(("name", "change", "message", "kept"), BAD_REGISTRATIONS,
                         ids=[f"{name}:{'|'.join(change.values())[:20]}" for name, change, *_ in BAD_REGISTRATIONS])
def test_bad_registration_input_is_refused_next_to_the_field_keeping_the_input(app, login_as, name, change,
                                                                               message, kept):
    response = login_as("nurse").submit("/patients/new", {**NEW, "legal_name": "Ada Kept-Quill", **change})
    html = body(response)
    assert response.status_code == 200
    assert message in (field_error(html, name) or ""), html
    assert field_error(html, name).count("Error:") == 1
    assert re.search(rf'aria-describedby="[^"]*{name}-error"', html)
    assert 'value="Ada Kept-Quill"' in html
    if kept is not None:
        assert f'value="{kept}"' in html
    assert patient_count(app) == 0


def test_a_reminder_channel_choice_is_kept_on_error(login_as):
    html = body(login_as("nurse").submit("/patients/new", {**NEW, "reminder_channel": "email", "email": ""}))
    assert re.search(r'<option selected value="email">', html)


def test_duplicate_mrn_is_refused_at_the_mrn_field_whatever_the_case(app, clock, login_as):
    make_patient(app, clock, mrn="KC-00042")
    response = login_as("coordinator").submit("/patients/new", {**NEW, "mrn": "kc-00042", "legal_name": "Other"})
    html = body(response)
    assert response.status_code == 200
    assert "already exists" in field_error(html, "mrn")
    assert 'value="Other"' in html and 'value="kc-00042"' in html
    assert patient_count(app) == 1


def test_a_duplicate_mrn_caught_only_by_the_database_is_still_a_field_error(app, clock, login_as, monkeypatch):
    make_patient(app, clock, mrn="KC-00042")
    monkeypatch.setattr(service, "find_matches", lambda values: [])  # as if the other save landed just after the check
    response = login_as("nurse").submit("/patients/new", NEW)
    assert response.status_code == 200
    assert "already exists" in field_error(body(response), "mrn")


def test_coordinator_registers_without_clinical_background_fields(app, login_as):
    coordinator = login_as("coordinator")
    form = body(coordinator.get("/patients/new"))
    assert 'name="indication"' in form
    assert 'name="allergies"' not in form and 'name="failed_trials"' not in form
    response = coordinator.submit("/patients/new", NEW)  # clinical values in the request are ignored
    assert response.status_code == 302
    patient = patient_by_mrn(app, "KC-00042")
    assert (patient.indication, patient.allergies, patient.failed_trials) == ("trd", "", 0)


# --- search and the list ------------------------------------------------------------------------


@pytest.fixture
def three_patients(app, clock):
    return {
        "quill": make_patient(app, clock, mrn="KC-1001", legal_name="Ada Quill", preferred_name="Addie",
                              date_of_birth=date(1984, 3, 9)),
        "quillon": make_patient(app, clock, mrn="KC-1002", legal_name="Bea Quillon", date_of_birth=date(1990, 7, 1)),
        "stone": make_patient(app, clock, mrn="KC-1003", legal_name="Cy Stone", date_of_birth=date(1984, 3, 9),
                              indication="ptsd"),
    }


@pytest.mark.parametrize(("query", "expected"), [
    ("q=quill", {"Ada Quill (Addie)", "Bea Quillon"}),
    ("q=ADDIE", {"Ada Quill (Addie)"}),
    ("q=kc-1003", {"Cy Stone"}),
    ("dob=1984-03-09", {"Ada Quill (Addie)", "Cy Stone"}),
    ("q=quill&dob=1984-03-09", {"Ada Quill (Addie)"}),
    ("q=KC-10", set()),  # an MRN matches whole, never in part
    ("", {"Ada Quill (Addie)", "Bea Quillon", "Cy Stone"}),
])
def test_search_by_name_part_mrn_and_date_of_birth(login_as, three_patients, query, expected):
    html = body(login_as("coordinator").get(f"/patients/?{query}"))
    names = set(re.findall(r'<th scope="row">([^<]+)</th>', html))
    assert names == expected


def test_search_keys_follow_a_rename_in_the_same_flush(app, login_as, three_patients):
    with app.app_context():
        patient = db.session.get(Patient, three_patients["stone"])
        patient.legal_name, patient.preferred_name, patient.mrn = "Cy Marlow-Stone", "Cyrus", "Kc-2003"
        db.session.commit()
        words = set(db.session.scalars(select(PatientSearchWord.word).where(
            PatientSearchWord.patient_id == patient.id)))
    assert words == {"cy", "marlowstone", "marlow", "stone", "cyrus"}
    nurse = login_as("nurse")
    for query, found in (("marl", True), ("Cyru", True), ("stone", True), ("quill", False), ("KC-2003", True),
                         ("kc-1003", False)):
        assert ("Cy Marlow-Stone" in body(nurse.get(f"/patients/?q={query}"))) is found, query


def test_a_search_reads_the_word_index_not_every_name(app, backend, three_patients):
    with app.app_context():
        query = service.search_query("quil sto").limit(25)
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if backend == "sqlite":
            steps = [row[-1] for row in db.session.execute(sql_text(f"EXPLAIN QUERY PLAN {sql}"))]
            plan = " | ".join(steps)
            assert "SEARCH patient_search_word" in plan, plan
            assert not [step for step in steps if step.startswith(("SCAN patient", "SCAN patient_search_word"))], plan
            assert "SEARCH patient USING COVERING INDEX ix_patient_mrn_key" in plan, plan
        else:  # three rows are read sequentially whatever the indexes: ask whether the range can use one at all
            db.session.execute(sql_text("SET LOCAL enable_seqscan = off"))
            plan = " | ".join(row[0] for row in db.session.execute(sql_text(f"EXPLAIN {sql}")))
            assert "Index Only Scan using pk_patient_search_word" in plan, plan
            assert "Seq Scan on patient_search_word" not in plan, plan


def test_list_rows_show_mrn_dob_indication_and_link_to_the_chart(login_as, three_patients):
    html = body(login_as("nurse").get("/patients/?q=stone"))
    assert "KC-1003" in html and "1984-03-09" in html and "PTSD" in html
    assert f'href="/patients/{three_patients["stone"]}"' in html


@pytest.mark.parametrize(("query", "name", "message"), [
    ("q=quill&dob=2026-02-30", "dob", "Not a valid date value"),
    ("q=quill&dob=1800-01-01", "dob", "from 1900 onwards"),
    ("q=quill&dob=yesterday", "dob", "Not a valid date value"),
])
def test_bad_date_of_birth_in_search_lists_nobody_and_says_why_at_the_field(login_as, three_patients, query, name,
                                                                            message):
    response = login_as("nurse").get(f"/patients/?{query}")
    html = body(response)
    assert response.status_code == 200
    assert message in field_error(html, name)
    assert chart_rows(html) == 0
    assert 'value="quill"' in html


@pytest.mark.parametrize("page", ["abc", "0", "-3", "999999999999"])
def test_bad_page_number_shows_the_first_page_and_an_error_at_the_page_field(login_as, three_patients, page):
    response = login_as("nurse").get(f"/patients/?page={page}")
    html = body(response)
    assert response.status_code == 200
    assert field_error(html, "page").count("Error:") == 1
    assert chart_rows(html) == 3


def test_pages_of_twenty_five(app, clock, login_as):
    for n in range(30):
        make_patient(app, clock, legal_name=f"Pager Person {n:02d}")
    nurse = login_as("nurse")
    first, second = body(nurse.get("/patients/?q=pager")), body(nurse.get("/patients/?q=pager&page=2"))
    assert (chart_rows(first), chart_rows(second)) == (25, 5)
    assert "Pager Person 00" in first and "Pager Person 29" in second
    assert "page 2 of 2" in second
    assert chart_rows(body(nurse.get("/patients/?q=pager&page=9"))) == 5  # past the end: the last page


def test_search_is_audited_with_the_number_of_results_never_the_text(app, login_as, three_patients):
    login_as("nurse").get("/patients/?q=quill&dob=1984-03-09")
    searched = events(app, "patients.searched")[-1]
    assert json.loads(searched.details) == {"results": 1, "page": 1}
    assert "quill" not in searched.details.lower() and "1984" not in searched.details


def test_register_button_for_roles_that_may_register(login_as):
    assert "Register patient" in body(login_as("coordinator").get("/patients/"))


# --- access -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/patients/"), ("GET", "/patients/new"), ("GET", "/patients/{id}"), ("GET", "/patients/{id}/edit"),
    ("POST", "/patients/{id}/weights"), ("POST", "/patients/{id}/consent"),
])
def test_admin_is_refused_patient_pages(app, clock, login_as, method, url):
    patient_id = make_patient(app, clock, legal_name="Hidden From Admin")
    admin = login_as("admin")
    url = url.format(id=patient_id)
    response = admin.get(url) if method == "GET" else admin.submit(url, {"kg": "80", "measured_on": "2026-11-26"})
    assert response.status_code == 403
    assert "Hidden From Admin" not in body(response)


@pytest.mark.parametrize("url", ["/patients/{id}/weights", "/patients/{id}/medications",
                                 "/patients/{id}/contraindications", "/patients/{id}/consent"])
def test_coordinator_cannot_write_clinical_background(app, clock, login_as, url):
    patient_id = make_patient(app, clock)
    response = login_as("coordinator").submit(url.format(id=patient_id), {
        "kg": "80.0", "measured_on": "2026-11-26", "name": "X", "med_class": "other", "started_on": "2026-01-01",
        "kind": "other", "noted_on": "2026-11-26", "consent_on": "2026-11-26", "form_version": "v1"})
    assert response.status_code == 403


def test_unknown_patient_is_404(login_as):
    nurse = login_as("nurse")
    assert nurse.get("/patients/999999").status_code == 404
    assert nurse.get("/patients/999999/edit").status_code == 404
    assert nurse.submit("/patients/999999/weights", {"kg": "80", "measured_on": "2026-11-26"}).status_code == 404


# --- the chart ----------------------------------------------------------------------------------


@pytest.fixture
def charted(app, clock):
    """A patient with allergies, a weight, a medication, a contraindication, consent and a booked series."""
    patient_id = make_patient(app, clock, legal_name="Ada Quill", allergies="Penicillin (rash)")
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        service.add_weight(patient, kg=Decimal("82.5"), measured_on=date(2026, 11, 20), actor=FACTORY_ACTOR,
                           now=clock())
        service.add_medication(patient, name="Sertraline", med_class="ssri_snri", started_on=date(2025, 6, 1),
                               stopped_on=None, actor=FACTORY_ACTOR, now=clock())
        service.add_contraindication(patient, kind="uncontrolled_hypertension", detail="BP 182/110 in March",
                                     noted_on=date(2026, 3, 2), actor=FACTORY_ACTOR, now=clock())
        service.record_consent(patient, consent_on=date(2026, 11, 1), form_version="KC-2026-03",
                               actor=FACTORY_ACTOR, now=clock())
        db.session.commit()
        create_chairs(2)
        order_series(patient_id=patient_id, now=clock(), start_on=MONDAY)
    return patient_id


CLINICAL_TEXT = ("Penicillin (rash)", "82.5 kg", "181.9 lb", "Sertraline", "Uncontrolled hypertension",
                 "BP 182/110", "KC-2026-03", "Allergies", "Medications", "Consent", "Pregnancy possible",
                 "Treatment-resistant depression")


@pytest.mark.parametrize("role", ["nurse", "physician"])
def test_clinicians_see_the_clinical_background_and_the_schedule(login_as, charted, role):
    html = body(login_as(role).get(f"/patients/{charted}"))
    for text in CLINICAL_TEXT:
        assert text in html, text
    assert "Mon 2026-11-30 09:00" in html and "Chair 1" in html and "Scheduled" in html
    assert "1 of 6" in html  # the next session, in the upcoming list


def test_coordinator_sees_demographics_and_schedule_but_no_clinical_background(login_as, charted):
    html = body(login_as("coordinator").get(f"/patients/{charted}"))
    assert "Ada Quill" in html and "Mon 2026-11-30 09:00" in html and "Upcoming sessions" in html
    for text in CLINICAL_TEXT:
        assert text not in main(html), text
    assert "Record weight" not in html and "failed trials" not in html.lower()


def test_only_a_physician_gets_the_order_a_series_link(login_as, charted):
    link = f'href="/patients/{charted}/series/new"'
    assert link in body(login_as("physician").get(f"/patients/{charted}"))
    assert link not in body(login_as("nurse").get(f"/patients/{charted}"))
    assert link not in body(login_as("coordinator").get(f"/patients/{charted}"))


def test_every_chart_view_is_audited_with_the_patient(app, login_as, charted):
    nurse, coordinator = login_as("nurse"), login_as("coordinator")
    nurse.get(f"/patients/{charted}")
    coordinator.get(f"/patients/{charted}")
    viewed = events(app, "patient.viewed")
    assert [(e.patient_id, e.username, json.loads(e.details)) for e in viewed] == [
        (charted, nurse.user.username, {"clinical": True}),
        (charted, coordinator.user.username, {"clinical": False})]


def test_chart_has_ordered_headings_unique_ids_and_scoped_table_headers(app, clock, login_as, charted):
    add_medication(app, clock, charted, name="Bupropion")  # two stop forms on one page
    page = body(login_as("physician").get(f"/patients/{charted}"))
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert "Sertraline stopped on" in page and "Bupropion stopped on" in page
    html = main(page)
    levels = [int(level) for level in re.findall(r"<h([1-6])[\s>]", html)]
    assert levels[0] == 1
    assert all(after - before <= 1 for before, after in zip(levels, levels[1:], strict=False)), levels
    assert "<th>" not in html and "<th " not in html.replace('<th scope="', "")


# --- weights, medications, contraindications, consent -------------------------------------------


def test_weight_is_recorded_and_shown_in_kg_and_lb(app, clock, login_as):
    patient_id = make_patient(app, clock)
    nurse = login_as("nurse")
    response = nurse.submit(f"/patients/{patient_id}/weights", {"kg": "70.3", "measured_on": "2026-11-26"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/patients/{patient_id}#weights")
    html = body(nurse.get(f"/patients/{patient_id}"))
    assert "70.3 kg" in html and "155.0 lb" in html
    assert events(app, "patient.weight_added")[-1].patient_id == patient_id


@pytest.mark.parametrize(("data", "name", "message", "kept"), [
    ({"kg": "24.9"}, "kg", "between 25 and 350", "24.9"),
    ({"kg": "350.1"}, "kg", "between 25 and 350", "350.1"),
    ({"kg": "82.55"}, "kg", "one decimal place", "82.55"),
    ({"kg": "NaN"}, "kg", "Enter a number", "NaN"),
    ({"kg": "heavy"}, "kg", "Not a valid decimal value", "heavy"),
    ({"kg": ""}, "kg", "This field is required", None),
    ({"measured_on": "2026-11-27"}, "measured_on", "in the future", "2026-11-27"),
    ({"measured_on": "2026-13-01"}, "measured_on", "Not a valid date value", "2026-13-01"),
])
def test_bad_weight_is_shown_on_the_chart_next_to_the_field(app, clock, login_as, data, name, message, kept):
    patient_id = make_patient(app, clock)
    response = login_as("nurse").submit(f"/patients/{patient_id}/weights",
                                        {"kg": "80.0", "measured_on": "2026-11-26", **data})
    html = body(response)
    assert response.status_code == 400
    assert message in field_error(html, name)
    assert field_error(html, name).count("Error:") == 1
    if kept is not None:
        assert f'value="{kept}"' in html
    assert "No weight is recorded." in html


def test_medication_is_added_then_stopped(app, clock, login_as):
    patient_id = make_patient(app, clock)
    physician = login_as("physician")
    response = physician.submit(f"/patients/{patient_id}/medications", {
        "name": "Lamotrigine", "med_class": "lamotrigine", "started_on": "2025-01-10"})
    assert response.status_code == 302
    with app.app_context():
        medication_id = db.session.scalar(select(PatientMedication.id)
                                          .where(PatientMedication.patient_id == patient_id))
    html = body(physician.get(f"/patients/{patient_id}"))
    assert "Lamotrigine" in html and "<strong>Current</strong>" in html
    assert f'id="med{medication_id}-stopped_on"' in html
    response = physician.submit(f"/patients/{patient_id}/medications/{medication_id}/stop",
                                {f"med{medication_id}-stopped_on": "2026-11-25"})
    assert response.status_code == 302
    assert "Stopped 2026-11-25" in body(physician.get(f"/patients/{patient_id}"))
    assert events(app, "patient.medication_stopped")[-1].patient_id == patient_id


@pytest.mark.parametrize(("data", "name", "message"), [
    ({"med_class": "herbal"}, "med_class", "Not a valid choice"),
    ({"name": ""}, "name", "This field is required"),
    ({"started_on": "2026-12-25"}, "started_on", "in the future"),
    ({"stopped_on": "2025-01-09"}, "stopped_on", "before the start date"),
])
def test_bad_medication_is_refused_on_the_chart(app, clock, login_as, data, name, message):
    patient_id = make_patient(app, clock)
    response = login_as("nurse").submit(f"/patients/{patient_id}/medications", {
        "name": "Lamotrigine", "med_class": "lamotrigine", "started_on": "2025-01-10", **data})
    assert response.status_code == 400
    assert message in field_error(body(response), name)
    assert 'value="Lamotrigine"' in body(response) or data.get("name") == ""


def test_stop_date_before_the_start_is_refused_at_that_medications_field(app, clock, login_as):
    patient_id = make_patient(app, clock)
    medication_id = add_medication(app, clock, patient_id, started_on=date(2025, 6, 1))
    response = login_as("nurse").submit(f"/patients/{patient_id}/medications/{medication_id}/stop",
                                        {f"med{medication_id}-stopped_on": "2025-05-31"})
    assert response.status_code == 400
    assert "before the start date" in field_error(body(response), f"med{medication_id}-stopped_on")
    with app.app_context():
        assert db.session.get(PatientMedication, medication_id).stopped_on is None


def test_stopping_another_patients_medication_is_404(app, clock, login_as):
    mine, theirs = make_patient(app, clock), make_patient(app, clock)
    their_medication = add_medication(app, clock, theirs)
    response = login_as("nurse").submit(f"/patients/{mine}/medications/{their_medication}/stop",
                                        {f"med{their_medication}-stopped_on": "2026-11-25"})
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(PatientMedication, their_medication).stopped_on is None


def test_stopping_a_medication_still_needs_the_csrf_token(app, clock, login_as):
    patient_id = make_patient(app, clock)
    medication_id = add_medication(app, clock, patient_id)
    response = login_as("nurse").post(f"/patients/{patient_id}/medications/{medication_id}/stop",
                                      data={f"med{medication_id}-stopped_on": "2026-11-25"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(PatientMedication, medication_id).stopped_on is None


def test_contraindication_appears_in_the_alerts(app, clock, login_as):
    patient_id = make_patient(app, clock)
    nurse = login_as("nurse")
    assert nurse.submit(f"/patients/{patient_id}/contraindications", {
        "kind": "psychosis", "detail": "Episode 2019", "noted_on": "2026-11-01"}).status_code == 302
    html = body(nurse.get(f"/patients/{patient_id}"))
    alerts = html.split('id="alerts"', 1)[1].split("</section>", 1)[0]
    assert "On record: 1" in alerts and "Psychosis or schizophrenia" in alerts and "Episode 2019" in alerts
    bad = nurse.submit(f"/patients/{patient_id}/contraindications", {"kind": "gout", "noted_on": "2026-11-01"})
    assert bad.status_code == 400 and "Not a valid choice" in field_error(body(bad), "kind")


def test_consent_is_recorded_and_a_future_date_refused(app, clock, login_as):
    patient_id = make_patient(app, clock)
    nurse = login_as("nurse")
    assert "Not on file" in body(nurse.get(f"/patients/{patient_id}"))
    future = nurse.submit(f"/patients/{patient_id}/consent", {"consent_on": "2026-12-01", "form_version": "v7"})
    assert future.status_code == 400 and "in the future" in field_error(body(future), "consent_on")
    assert 'value="v7"' in body(future)
    assert nurse.submit(f"/patients/{patient_id}/consent",
                        {"consent_on": "2026-11-26", "form_version": "v7"}).status_code == 302
    assert "Signed 2026-11-26, form version v7" in body(nurse.get(f"/patients/{patient_id}"))


# --- edits --------------------------------------------------------------------------------------


def edit_data(client, patient_id, **changes):
    """The edit form as the page offers it (hidden version included), with some fields changed."""
    html = body(client.get(f"/patients/{patient_id}/edit"))
    version = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html).group(1)
    return {**NEW, "mrn": mrn_in_form(html), "version": version, **changes}


def mrn_in_form(html):
    return re.search(r'id="mrn" [^>]*value="([^"]*)"', html).group(1)


def test_edit_is_audited_with_old_and_new_values(app, clock, login_as):
    patient_id = make_patient(app, clock, mrn="KC-7", legal_name="Ada Quill", phone="+15035550100")
    nurse = login_as("nurse")
    response = nurse.submit(f"/patients/{patient_id}/edit", edit_data(nurse, patient_id, phone="503 555 0199"))
    assert response.status_code == 302
    updated = events(app, "patient.updated")[-1]
    details = json.loads(updated.details)
    assert (updated.patient_id, updated.username) == (patient_id, nurse.user.username)
    assert details["phone"] == ["+15035550100", "+15035550199"]
    assert patient_by_mrn(app, "KC-7").phone == "+15035550199"


def test_a_stale_edit_that_does_not_say_what_it_was_opened_with_asks_a_choice_for_every_difference(
        app, clock, login_as):
    """(A page always says; tests/test_merge.py has the merges of edits that do.)"""
    patient_id = make_patient(app, clock, mrn="KC-7", legal_name="Ada Quill", phone="+15035550100")
    first, second = login_as("nurse"), login_as("coordinator")
    first_form = edit_data(first, patient_id, phone="503 555 0111")
    second_form = edit_data(second, patient_id, phone="503 555 0122", escort_name="Second's Escort")
    assert first.submit(f"/patients/{patient_id}/edit", first_form).status_code == 302

    response = second.submit(f"/patients/{patient_id}/edit", second_form)
    html = body(response)
    assert response.status_code == 409 and 'data-testid="edit-conflict"' in html
    assert 'id="choice-phone"' in html and 'id="choice-escort_name"' in html
    assert 'value="(503) 555-0122"' in html and "Second&#39;s Escort" in html  # the entry is kept
    saved = patient_by_mrn(app, "KC-7")
    assert (saved.phone, saved.escort_name, saved.version) == ("+15035550111", "Tom Quill", 2)
    assert len(events(app, "patient.updated")) == 1


def test_a_save_racing_another_commit_is_stopped_by_the_version_column(make_app, clock):
    """The request boundary then tries once more, merging with that save (core.edits.attempt_merged)."""
    app = make_app()
    patient_id = make_patient(app, clock, mrn="KC-9", phone="+15035550100")
    with app.app_context():
        stale = db.session.get(Patient, patient_id)
        db.session.expunge(stale)
        db.session.rollback()
        with app.app_context():  # another request commits in between
            other = db.session.get(Patient, patient_id)
            service.update_patient(other, {"phone": "+15035550111"}, expected_version=1,
                                   allowed_fields=service.DEMOGRAPHIC_FIELDS, actor=FACTORY_ACTOR, now=clock())
            db.session.commit()
        db.session.add(stale)
        with pytest.raises(StaleDataError):
            service.update_patient(stale, {"phone": "+15035550122"}, expected_version=1,
                                   allowed_fields=service.DEMOGRAPHIC_FIELDS, actor=FACTORY_ACTOR, now=clock())
        db.session.rollback()
    assert patient_by_mrn(app, "KC-9").phone == "+15035550111"


def test_coordinator_edit_leaves_clinical_fields_alone(app, clock, login_as):
    patient_id = make_patient(app, clock, mrn="KC-8", allergies="Latex", failed_trials=4, indication="trd")
    coordinator = login_as("coordinator")
    form = body(coordinator.get(f"/patients/{patient_id}/edit"))
    assert 'name="allergies"' not in form and "Latex" not in form
    assert 'name="pregnancy_possible"' not in form and 'name="indication"' not in form
    data = edit_data(coordinator, patient_id, allergies="", failed_trials="0", indication="other",
                     pregnancy_possible="yes", legal_name="Renamed Person")
    assert coordinator.submit(f"/patients/{patient_id}/edit", data).status_code == 302
    saved = patient_by_mrn(app, "KC-8")
    assert (saved.legal_name, saved.allergies, saved.failed_trials, saved.indication, saved.pregnancy_possible) == \
        ("Renamed Person", "Latex", 4, "trd", False)


def test_clinician_edits_clinical_fields(app, clock, login_as):
    patient_id = make_patient(app, clock, mrn="KC-8", allergies="Latex", failed_trials=1)
    nurse = login_as("nurse")
    data = edit_data(nurse, patient_id, allergies="Latex; sulfa", failed_trials="2")
    assert nurse.submit(f"/patients/{patient_id}/edit", data).status_code == 302
    saved = patient_by_mrn(app, "KC-8")
    assert (saved.allergies, saved.failed_trials) == ("Latex; sulfa", 2)
    assert json.loads(events(app, "patient.updated")[-1].details)["failed_trials"] == [1, 2]


def test_edit_to_an_existing_mrn_is_refused_at_the_field(app, clock, login_as):
    make_patient(app, clock, mrn="KC-1")
    patient_id = make_patient(app, clock, mrn="KC-2")
    nurse = login_as("nurse")
    response = nurse.submit(f"/patients/{patient_id}/edit", edit_data(nurse, patient_id, mrn="kc-1"))
    assert response.status_code == 200
    assert "already exists" in field_error(body(response), "mrn")
    assert patient_by_mrn(app, "KC-2") is not None


def test_bad_edit_input_is_refused_next_to_the_field(app, clock, login_as):
    patient_id = make_patient(app, clock)
    nurse = login_as("nurse")
    response = nurse.submit(f"/patients/{patient_id}/edit", edit_data(nurse, patient_id, date_of_birth="2026-02-30"))
    assert response.status_code == 200
    assert "Not a valid date value" in field_error(body(response), "date_of_birth")
    assert 'value="2026-02-30"' in body(response)


# --- a constant number of statements ------------------------------------------------------------


def test_patient_list_uses_the_same_number_of_statements_for_10_and_60_patients(app, clock, login_as):
    nurse = login_as("nurse")
    for _ in range(10):
        make_patient(app, clock)
    nurse.get("/patients/")
    with count_statements(app) as few:
        assert chart_rows(body(nurse.get("/patients/"))) == 10
    for _ in range(50):
        make_patient(app, clock)
    with count_statements(app) as many:
        assert chart_rows(body(nurse.get("/patients/"))) == 25
    assert few["n"] == many["n"]


@pytest.mark.parametrize("role", ["physician", "coordinator"])
def test_chart_uses_the_same_number_of_statements_for_10_and_60_records(app, clock, login_as, role):
    with app.app_context():
        create_chairs(2)
    client = login_as(role)
    counts = []
    for records in (10, 60):
        patient_id = make_patient(app, clock)
        add_background(app, clock, patient_id, records)
        with app.app_context():
            order_series(patient_id=patient_id, now=clock(), start_on=MONDAY)
        client.get(f"/patients/{patient_id}")
        with count_statements(app) as counter:
            html = body(client.get(f"/patients/{patient_id}"))
        assert ("Drug 59" in html) is (role == "physician" and records == 60)
        counts.append(counter["n"])
    assert counts[0] == counts[1]

