"""Patient use cases: register, edit with a version check, clinical background, search."""
from datetime import date

from sqlalchemy import and_, func, select, union
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.service import record
from opsmgr.core import contact
from opsmgr.core.edits import EditConflict, Saved, audit_details, saved_by_audit
from opsmgr.core.merge import merge_edit
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.patients.duplicates import DUPLICATE_MRN, find_matches, refuse_unconfirmed
from opsmgr.patients.models import (
    Patient,
    PatientContraindication,
    PatientMedication,
    PatientSearchWord,
    PatientWeight,
    ReminderChannel,
    mrn_key,
)
from opsmgr.rules import identity
from opsmgr.rules.findings import Problem

#: Fields a patient edit may change (an allowlist: nothing else is taken from a form).
DEMOGRAPHIC_FIELDS = (
    "mrn", "legal_name", "preferred_name", "date_of_birth", "sex_at_birth",
    "phone", "email", "reminder_channel", "contact_consent_on", "escort_name", "escort_phone",
)
#: Clinical background: clinicians only see and change these (a coordinator records the first two once, from
#: the referral, at registration; README, Security model).
CLINICAL_FIELDS = ("pregnancy_possible", "indication", "indication_detail", "failed_trials", "allergies")
#: The fields a reminder channel depends on.
REMINDER_FIELDS = ("reminder_channel", "phone", "email", "contact_consent_on")
NOT_TEXTABLE = ("This phone number cannot take text messages (it is a landline or a toll-free number). "
                "Enter a mobile number, or choose email or no reminders.")


class PatientError(DomainError):
    """A refused patient change, with the field it concerns (None: the whole form)."""

    def __init__(self, message, field=None):
        super().__init__([Problem(field, message)])


def find_by_mrn(mrn):
    return db.session.scalar(select(Patient).where(Patient.mrn_key == mrn_key(mrn)))


def reminder_problems(channel, *, phone, email, consent_on):
    """What stops reminders by `channel` with these contact details, each at its field: SMS needs a number
    that takes texts, email an address, and any channel the date the patient agreed. A `phone` or `email`
    of None is not known (what was typed was refused), so nothing is said about it."""
    problems = []
    if channel == ReminderChannel.SMS and phone == "":
        problems.append(Problem("phone", "SMS reminders need a phone number."))
    elif channel == ReminderChannel.SMS and phone is not None and not contact.takes_texts(phone):
        problems.append(Problem("reminder_channel", NOT_TEXTABLE))
    if channel == ReminderChannel.EMAIL and email == "":
        problems.append(Problem("email", "Email reminders need an email address."))
    if channel and channel != ReminderChannel.NONE and consent_on is None:
        problems.append(Problem("contact_consent_on", "Enter the date the patient agreed to reminders."))
    return problems


def checked_contact(values):
    """`values` with its phone numbers in E.164 and its email normalised (form values already are); the
    patient change is refused at each field that holds no valid number or address."""
    region, checked, problems = contact.clinic_region(), dict(values), []
    for name, normal in (("phone", lambda text: contact.e164(text, region)),
                         ("escort_phone", lambda text: contact.e164(text, region)), ("email", contact.normal_email)):
        if name in values:
            try:
                checked[name] = normal(values[name])
            except contact.ContactError as error:
                problems.append(Problem(name, str(error)))
    if problems:
        raise DomainError(problems)
    return checked


def _refuse_unreachable(state):
    problems = reminder_problems(state.get("reminder_channel"), phone=state.get("phone", ""),
                                 email=state.get("email", ""), consent_on=state.get("contact_consent_on"))
    if problems:
        raise DomainError(problems)


def _reminder_state(patient):
    """The saved fields reminders depend on, a number saved before E.164 was required read as one (None
    when it is none: not known)."""
    state = {name: getattr(patient, name) for name in REMINDER_FIELDS}
    try:
        state["phone"] = contact.e164(state["phone"], contact.clinic_region())
    except contact.ContactError:
        state["phone"] = None
    return state


def register_patient(values, *, actor, now, different_from=()):
    """Create a patient from validated form values. The MRN must be new; a patient with the same legal name
    and date of birth, phone or email stops it (PossibleDuplicate) unless their id is in `different_from`;
    contact details must be valid and reach the patient by their reminder channel."""
    values = checked_contact(values)
    _refuse_unreachable(values)
    matches = find_matches(values)
    refuse_unconfirmed(matches, different_from=set(different_from), actor=actor, now=now)
    fields = {name: values[name] for name in (*DEMOGRAPHIC_FIELDS, *CLINICAL_FIELDS) if name in values}
    patient = Patient(**fields, created_at=now, updated_at=now)
    db.session.add(patient)
    _flush_patient()
    record("patient.created", actor=actor, now=now, object_type="patient", object_id=patient.id,
           patient_id=patient.id, details={"fields": sorted(fields)})
    if matches:
        record("patient.registered_despite_match", actor=actor, now=now, object_type="patient",
               object_id=patient.id, patient_id=patient.id,
               details={"different_from": sorted(match.patient_id for match in matches)})
    return patient


def update_patient(patient, values, *, expected_version, allowed_fields, opened=None, pending=(), choices=None,
                   actor, now):
    """Apply an edit made on version `expected_version`, merged with any edit saved since: `opened` the
    fingerprints of the values the form was opened with (None: opened on `expected_version`). A field
    only a colleague changed keeps their value; one both changed differently refuses the edit
    (EditConflict) until `choices` settle it."""
    mine = checked_contact({name: values[name] for name in allowed_fields if name in values})
    theirs = {name: getattr(patient, name) for name in mine}
    if opened is None and patient.version != expected_version:
        opened = {}  # opened on another version, without saying on what: every difference is a choice
    merge = merge_edit(mine, theirs, opened=opened, pending=pending, choices=choices)
    saved_by = None
    if merge.conflicts or merge.taken_from_theirs:
        saved_by = saved_by_audit("patient.updated", "patient", patient.id, actor)
    if merge.conflicts:
        raise EditConflict(merge, theirs, saved_by, version=patient.version)
    merged = merge.values
    if any(name in merged for name in REMINDER_FIELDS):
        # Each side may be consistent on its own and not once merged (an SMS channel and a cleared phone).
        _refuse_unreachable({**_reminder_state(patient), **merged})
    if "mrn" in merged and merged["mrn"].strip().lower() != patient.mrn.lower():
        other = find_by_mrn(merged["mrn"])
        if other is not None and other.id != patient.id:
            raise PatientError(DUPLICATE_MRN, field="mrn")
    changes = {}
    for name, value in merged.items():
        if getattr(patient, name) != value:
            changes[name] = [_audit_value(getattr(patient, name)), _audit_value(value)]
            setattr(patient, name, value)
    if changes:
        patient.updated_at = now
        _flush_patient()
        record("patient.updated", actor=actor, now=now, object_type="patient", object_id=patient.id,
               patient_id=patient.id, details={**changes, **audit_details(merge)})
    return Saved(patient, merge, saved_by, tuple(changes))


def _flush_patient():
    """Flush, turning a unique MRN that the database refused at the last moment (a save that landed
    between our check and our write) into the error the check gives. A stale version is left to the
    request boundary, which merges with that save (core.edits.attempt_merged)."""
    try:
        db.session.flush()
    except IntegrityError as error:
        if "mrn" not in str(error.orig).lower():
            raise
        raise PatientError(DUPLICATE_MRN, field="mrn") from error


def _audit_value(value):
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int)):
        return value
    return str(value)[:200]


def add_weight(patient, *, kg, measured_on, actor, now):
    weight = PatientWeight(patient=patient, kg=kg, measured_on=measured_on, recorded_by_id=actor.user_id,
                           recorded_at=now)
    db.session.add(weight)
    db.session.flush()
    record("patient.weight_added", actor=actor, now=now, object_type="patient_weight", object_id=weight.id,
           patient_id=patient.id, details={"kg": str(kg), "measured_on": measured_on.isoformat()})
    return weight


def add_medication(patient, *, name, med_class, started_on, stopped_on, actor, now):
    medication = PatientMedication(patient=patient, name=name, med_class=med_class, started_on=started_on,
                                   stopped_on=stopped_on, recorded_by_id=actor.user_id, recorded_at=now)
    db.session.add(medication)
    db.session.flush()
    record("patient.medication_added", actor=actor, now=now, object_type="patient_medication",
           object_id=medication.id, patient_id=patient.id, details={"class": med_class})
    return medication


def stop_medication(medication, *, stopped_on, actor, now):
    if medication.is_entered_in_error:
        raise PatientError("This medication was marked entered in error; it is not on the record to stop.")
    if medication.started_on and stopped_on < medication.started_on:
        raise PatientError("The stop date is before the start date.", field="stopped_on")
    medication.stopped_on = stopped_on
    db.session.flush()
    record("patient.medication_stopped", actor=actor, now=now, object_type="patient_medication",
           object_id=medication.id, patient_id=medication.patient_id,
           details={"stopped_on": stopped_on.isoformat()})


def add_contraindication(patient, *, kind, detail, noted_on, actor, now):
    item = PatientContraindication(patient=patient, kind=kind, detail=detail, noted_on=noted_on,
                                   recorded_by_id=actor.user_id, recorded_at=now)
    db.session.add(item)
    db.session.flush()
    record("patient.contraindication_added", actor=actor, now=now, object_type="patient_contraindication",
           object_id=item.id, patient_id=patient.id, details={"kind": kind})
    return item


def record_consent(patient, *, consent_on, form_version, actor, now):
    old = patient.consent_on
    patient.consent_on, patient.consent_form_version = consent_on, form_version
    patient.consent_recorded_by_id, patient.updated_at = actor.user_id, now
    db.session.flush()
    record("patient.consent_recorded", actor=actor, now=now, object_type="patient", object_id=patient.id,
           patient_id=patient.id, details={"consent_on": [_audit_value(old), consent_on.isoformat()],
                                           "form_version": form_version[:40]})


def search_query(text, date_of_birth=None):
    """Patients whose names hold a word starting with each word searched, in any order and ignoring accents
    and case, or whose MRN is the text; and born on the date given. By family name; a select to paginate.

    The matches are found from the indexes — each word typed is an index range over the patients' search
    words (from the word itself up to the word with its last character's successor), the MRN one lookup
    — and the patients are read by id from those, so a search costs what it finds, not the clinic's size."""
    query = select(Patient)
    term = (text or "").strip().lower()
    if term:
        words = identity.query_words(term)
        matched = select(Patient.id.label("patient_id")).where(Patient.mrn_key == term)
        if words:
            named = select(PatientSearchWord.patient_id).where(_starts(PatientSearchWord.word, words[0]))
            for word in words[1:]:
                named = named.where(PatientSearchWord.patient_id.in_(
                    select(PatientSearchWord.patient_id).where(_starts(PatientSearchWord.word, word))))
            matched = union(named, matched)  # also drops a patient found by two words starting alike
        found = matched.subquery()
        query = query.join(found, found.c.patient_id == Patient.id)
    if date_of_birth is not None:
        query = query.where(Patient.date_of_birth == date_of_birth)
    return query.order_by(Patient.family_key, Patient.given_key, Patient.id)


def _starts(column, prefix):
    """`column` starts with `prefix`, as an index range (prefix is letters and digits: identity.query_words)."""
    return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


#: Patient columns only clinicians see; for anyone else they are never loaded, and reading one raises.
CLINICAL_COLUMNS = (Patient.pregnancy_possible, Patient.indication, Patient.indication_detail, Patient.failed_trials,
                    Patient.allergies, Patient.consent_on,
                    Patient.consent_form_version, Patient.consent_recorded_by_id)


def search_patients(text, date_of_birth, *, page, page_size, actor, now):
    """One page of matching patients, the total and the page actually shown; audited without the search text."""
    query = search_query(text, date_of_birth)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page = max(1, min(page, -(-total // page_size)))
    patients = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    # The search text may be a patient's name: only how many rows were shown goes to the audit trail.
    record("patients.searched", actor=actor, now=now, details={"results": total, "page": page})
    return patients, total, page
