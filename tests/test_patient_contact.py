"""Patient contact details: phone numbers read by `phonenumbers` and stored in E.164, emails checked by
`email-validator` (no network), and what each reminder channel needs."""
from datetime import date

import pytest
from sqlalchemy import select

from config import Config
from opsmgr.core import contact
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.patients import service
from opsmgr.patients.models import Patient
from tests.factories import FACTORY_ACTOR, create_patient
from tests.test_patients import NEW, body, field_error

US_EXAMPLE = "Enter a phone number like (503) 555-0142 or +44 20 7946 0958."


def saved(app, mrn="KC-00042"):
    with app.app_context():
        return db.session.scalar(select(Patient).where(Patient.mrn == mrn))


# --- the checks (no app) ------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "stored"), [
    ("(503) 555-0142", "+15035550142"),
    ("1-503-555-0142", "+15035550142"),  # with the trunk prefix
    ("+44 20 7946 0958", "+442079460958"),  # another country, with its code
    ("  ", ""),
])
def test_a_number_is_stored_in_e164(typed, stored):
    assert contact.e164(typed, "US") == stored


@pytest.mark.parametrize(("typed", "message"), [
    ("call me maybe", US_EXAMPLE),
    ("555 0100", US_EXAMPLE),  # seven digits: no area code
    ("(555) 555-0101", US_EXAMPLE),  # no such area code
    ("+44 1632 960000", US_EXAMPLE),  # a UK drama number: not in service
    ("503-555-0142 x12", contact.NO_EXTENSION),
])
def test_what_is_no_number_is_refused_with_an_example(typed, message):
    with pytest.raises(contact.ContactError) as refused:
        contact.e164(typed, "US")
    assert str(refused.value) == message


def test_the_example_follows_the_clinics_region():
    assert contact.phone_message("GB") == "Enter a phone number like 0121 234 5678 or +1 503 555 0142."


@pytest.mark.parametrize(("stored", "region", "shown"), [
    ("+15035550142", "US", "(503) 555-0142"),
    ("+14165550142", "US", "(416) 555-0142"),  # Canada shares the country code: dialled the same way
    ("+442079460958", "US", "+44 20 7946 0958"),
    ("+442079460958", "GB", "020 7946 0958"),
    ("(555) 555-0101", "US", "(555) 555-0101"),  # saved before E.164 was required: as stored
    ("+1555", "US", "+1555"),
    ("", "US", ""),
])
def test_a_stored_number_is_shown_in_the_clinics_format(stored, region, shown):
    assert contact.phone_display(stored, region) == shown


@pytest.mark.parametrize(("stored", "texts"), [
    ("+15035550142", True),  # US: fixed line or mobile, the plan does not tell
    ("+61491570156", True),  # a mobile
    ("+442079460958", False),  # a fixed line
    ("+18005550199", False),  # toll-free
    ("(503) 555-0142", False),  # not E.164: not known
])
def test_only_a_mobile_or_possible_mobile_takes_texts(stored, texts):
    assert contact.takes_texts(stored) is texts


@pytest.mark.parametrize(("typed", "result"), [
    ("Ada.Quill@EXAMPLE.org", "Ada.Quill@example.org"),
    ("ada.quill.example.org", "must have an @-sign"),
    ("ada@exam ple.org", "invalid characters"),
    ("ada@localhost", "should have a period"),
    ("", ""),
])
def test_an_email_is_normalised_or_refused_without_a_lookup(typed, result):
    try:
        assert contact.normal_email(typed) == result
    except contact.ContactError as refused:
        assert str(refused).startswith("Enter an email address like name@example.org. ") and result in str(refused)


def test_the_phone_region_is_read_in_capitals_and_an_unknown_one_stops_start_up(tmp_path):
    env = {"OPSMGR_INSTANCE_PATH": str(tmp_path), "OPSMGR_SECRET_KEY": "k", "OPSMGR_AUDIT_KEY": "k",
           "OPSMGR_TIMEZONE": "UTC"}
    assert Config(env).PHONE_REGION == "US"
    assert Config({**env, "OPSMGR_PHONE_REGION": " gb "}).PHONE_REGION == "GB"
    with pytest.raises(ValueError, match="OPSMGR_PHONE_REGION='UK' is not a region code"):
        Config({**env, "OPSMGR_PHONE_REGION": "UK"})


# --- the patient form ---------------------------------------------------------------------------


def test_contact_is_stored_normalised_and_shown_in_the_clinics_format(app, login_as):
    nurse = login_as("nurse")
    response = nurse.submit("/patients/new", {**NEW, "phone": "503.555.0142", "escort_phone": "+44 20 7946 0958",
                                              "email": "Ada.Quill@EXAMPLE.org"})
    assert response.status_code == 302
    patient = saved(app)
    assert (patient.phone, patient.escort_phone, patient.email, patient.phone_key) == \
        ("+15035550142", "+442079460958", "Ada.Quill@example.org", "5035550142")
    chart = body(nurse.get(f"/patients/{patient.id}"))
    assert "(503) 555-0142" in chart and "Tom Quill · +44 20 7946 0958" in chart
    assert 'value="(503) 555-0142"' in body(nurse.get(f"/patients/{patient.id}/edit"))


def test_bad_contact_is_refused_at_each_field_keeping_what_was_typed(app, login_as):
    typed = {"phone": "503 555 014", "escort_phone": "503-555-0188 x12", "email": "ada@exam ple.org"}
    response = login_as("coordinator").submit("/patients/new", {**NEW, **typed})
    html = body(response)
    assert response.status_code == 200 and saved(app) is None
    assert US_EXAMPLE in field_error(html, "phone")
    assert contact.NO_EXTENSION in field_error(html, "escort_phone")
    assert "invalid characters" in field_error(html, "email")
    assert field_error(html, "reminder_channel") is None  # the number is said wrong once, at the number
    for value in typed.values():
        assert f'value="{value}"' in html


def test_sms_reminders_to_a_fixed_line_are_refused_at_the_channel(app, login_as):
    response = login_as("nurse").submit("/patients/new", {**NEW, "phone": "+44 20 7946 0958"})
    html = body(response)
    assert response.status_code == 200 and saved(app) is None
    assert "cannot take text messages" in field_error(html, "reminder_channel")
    assert field_error(html, "phone") is None and 'value="+44 20 7946 0958"' in html


def test_a_change_is_checked_against_the_contact_already_on_file(app, clock):
    """The service checks the record as it will be saved: a merge may join a channel and a cleared phone."""
    with app.app_context():
        patient = create_patient(now=clock())
        with pytest.raises(DomainError) as refused:
            service.update_patient(patient, {"reminder_channel": "sms", "contact_consent_on": date(2026, 11, 1)},
                                   expected_version=patient.version, allowed_fields=service.DEMOGRAPHIC_FIELDS,
                                   actor=FACTORY_ACTOR, now=clock())
        assert refused.value.errors == [("phone", "SMS reminders need a phone number.")]


def test_a_number_saved_before_e164_is_shown_as_stored_and_must_be_corrected_on_edit(app, clock, login_as):
    with app.app_context():
        patient = create_patient(now=clock(), escort_name="Tom Quill")
        patient.phone = "(555) 555-0101"
        db.session.commit()
        patient_id, mrn = patient.id, patient.mrn
    nurse = login_as("nurse")
    assert "(555) 555-0101" in body(nurse.get(f"/patients/{patient_id}"))
    form = body(nurse.get(f"/patients/{patient_id}/edit"))
    assert 'value="(555) 555-0101"' in form
    version = form.split('name="version" type="hidden" value="', 1)[1].split('"', 1)[0]
    response = nurse.submit(f"/patients/{patient_id}/edit", {**NEW, "mrn": mrn,
                                                              "phone": "(555) 555-0101", "version": version})
    assert response.status_code == 200 and US_EXAMPLE in field_error(body(response), "phone")
