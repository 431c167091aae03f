"""Registering someone twice: the matching records are shown and a different person is confirmed; the
search ignores accents, case and word order, and the list sorts by family name."""
import json
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from tests.factories import create_patient
from tests.sql import count_statements

NEW = {
    "mrn": "KC-00042", "legal_name": "MARIA RAMIREZ", "preferred_name": "", "date_of_birth": "1984-03-09",
    "sex_at_birth": "female", "pregnancy_possible": "no", "phone": "", "email": "", "reminder_channel": "none",
    "contact_consent_on": "", "escort_name": "", "escort_phone": "", "indication": "trd", "failed_trials": "0",
}


def existing(app, clock, **fields):
    """A patient already on file. Registered as nobody else could be, then given the details that may match
    (registering them would be stopped: that is what is tested)."""
    values = {"mrn": "KC-1", "legal_name": "María Ramírez", "date_of_birth": date(1984, 3, 9), **fields}
    with app.app_context():
        patient = create_patient(now=clock(), mrn=values["mrn"], legal_name=f"Placeholder {values['mrn']}",
                                 date_of_birth=date(1900, 1, 1))
        for name, value in values.items():
            setattr(patient, name, value)
        db.session.commit()
        return patient.id


def patient_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Patient))


def details(app, action):
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id.desc())).first()
        return None if event is None else json.loads(event.details)


def panel(html):
    found = re.search(r'data-testid="possible-duplicates">(.*?)</section>', html, re.S)
    return found.group(1) if found else None


def listed(html):
    return re.findall(r'<th scope="row">([^<]+)</th>', html)


@pytest.mark.parametrize(("kept", "typed", "reason", "contact"), [
    ({}, {}, "Same legal name and date of birth", "None on file"),
    ({"legal_name": "Ann Other", "phone": "+1 (503) 555-0177"}, {"phone": "503.555.0177"}, "Same phone number",
     "Phone ending 0177"),
    ({"legal_name": "Ann Other", "email": "Maria.R@Example.org"}, {"email": "maria.r@example.ORG"}, "Same email",
     "Email M•••@Example.org"),
])
def test_a_possible_duplicate_is_shown_and_nothing_is_registered(app, clock, login_as, kept, typed, reason, contact):
    patient_id = existing(app, clock, **kept)
    response = login_as("coordinator").submit("/patients/new", {**NEW, **typed})
    html = response.get_data(as_text=True)
    shown = panel(html)
    assert response.status_code == 200 and shown is not None, html
    assert "KC-1" in shown and "1984-03-09" in shown and reason in shown and contact in shown
    assert f'href="/patients/{patient_id}"' in shown
    assert 'value="MARIA RAMIREZ"' in html and 'value="KC-00042"' in html  # everything typed is kept
    assert f'name="different_from" value="{patient_id}"' in html
    assert patient_count(app) == 1
    assert details(app, "patient.possible_duplicates_shown") == {"matches": 1, "patient_ids": [patient_id]}


def test_confirmed_different_person_is_registered_once_and_audited_as_such(app, clock, login_as):
    patient_id = existing(app, clock, phone="503 555 0177")
    other_id = existing(app, clock, mrn="KC-2", legal_name="Ann Other", phone="(503) 555-0177")
    nurse = login_as("nurse")
    # Confirming past only one of the two records shown is not enough.
    again = nurse.submit("/patients/new", {**NEW, "phone": "5035550177", "different_from": str(patient_id)})
    assert panel(again.get_data(as_text=True)) is not None
    response = nurse.submit("/patients/new", {**NEW, "phone": "5035550177",
                                              "different_from": f"{patient_id},{other_id}"})
    assert response.status_code == 302
    assert patient_count(app) == 3
    confirmed = details(app, "patient.registered_despite_match")
    assert confirmed == {"different_from": sorted([patient_id, other_id])}
    assert "ramirez" not in json.dumps(confirmed).lower()


def test_no_match_registers_directly(app, clock, login_as):
    existing(app, clock, date_of_birth=date(1984, 3, 10), phone="503 555 0177", email="m@example.org")
    response = login_as("nurse").submit("/patients/new", {**NEW, "phone": "503 555 0178", "email": "n@example.org"})
    assert response.status_code == 302
    assert patient_count(app) == 2
    assert details(app, "patient.possible_duplicates_shown") is None


def test_a_taken_mrn_is_said_at_the_field_and_cannot_be_confirmed_past(app, clock, login_as):
    patient_id = existing(app, clock, legal_name="Ann Other")
    response = login_as("nurse").submit("/patients/new", {**NEW, "mrn": "kc-1", "different_from": str(patient_id)})
    html = response.get_data(as_text=True)
    error = re.search(r'id="mrn-error"[^>]*>(.*?)</div>', html, re.S)
    assert error and "already exists" in error.group(1)
    assert "Same MRN" in panel(html) and 'name="different_from"' not in html
    assert patient_count(app) == 1


def test_search_ignores_accents_case_and_word_order_and_sorts_by_family_name(app, clock, login_as):
    for mrn, name in [("KC-1", "María Ramírez"), ("KC-2", "Zoe Adams"), ("KC-3", "Ramírez, Ana"),
                      ("KC-4", "Émile Bernard"), ("KC-5", "Ana Zimmer"), ("KC-6", "Mariana Ramos")]:
        existing(app, clock, mrn=mrn, legal_name=name, date_of_birth=date(1990, 1, int(mrn[-1])))
    nurse = login_as("nurse")
    assert listed(nurse.get("/patients/?q=ramirez+maria").get_data(as_text=True)) == ["María Ramírez"]
    assert listed(nurse.get("/patients/?q=RAM+mar").get_data(as_text=True)) == ["María Ramírez", "Mariana Ramos"]
    assert listed(nurse.get("/patients/?q=emile").get_data(as_text=True)) == ["Émile Bernard"]
    assert listed(nurse.get("/patients/").get_data(as_text=True)) == [
        "Zoe Adams", "Émile Bernard", "Ramírez, Ana", "María Ramírez", "Mariana Ramos", "Ana Zimmer"]


def test_keys_follow_a_change_of_name_or_phone(app, clock, login_as):
    patient_id = existing(app, clock)
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        patient.legal_name, patient.phone = "María Ramírez-Ortega", "+15035550177"
        db.session.commit()
        assert (patient.family_key, patient.phone_key) == ("ramirezortega", "5035550177")
    html = login_as("nurse").get("/patients/?q=ortega").get_data(as_text=True)
    assert listed(html) == ["María Ramírez-Ortega"]


def test_statements_do_not_grow_with_search_words_or_matches(app, clock, login_as):
    existing(app, clock, phone="503 555 0177")
    nurse = login_as("nurse")
    nurse.get("/patients/?q=maria")
    with count_statements(app) as one_word:
        nurse.get("/patients/?q=maria")
    with count_statements(app) as three_words:
        nurse.get("/patients/?q=maria+ramirez+ma")
    assert one_word["n"] == three_words["n"]
    with count_statements(app) as one_match:
        nurse.submit("/patients/new", NEW)
    for n in range(2, 6):
        existing(app, clock, mrn=f"KC-{n}", legal_name=f"Other {n}", phone="(503) 555-0177")
    with count_statements(app) as five_matches:
        html = nurse.submit("/patients/new", {**NEW, "phone": "503 555 0177"}).get_data(as_text=True)
    assert panel(html).count('<th scope="row">') == 5
    assert one_match["n"] == five_matches["n"]
