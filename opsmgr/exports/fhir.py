"""One patient's record as FHIR R4 resources, validated by the `fhir.resources` library.

The models are the library's R4B package (FHIR 4.3.0), whose Patient, EpisodeOfCare, Encounter,
Observation, QuestionnaireResponse, Medication, MedicationAdministration, AdverseEvent and
DocumentReference have R4's structure. Every resource's id is a UUID 5 of (table, row id), so a second
export of the same rows names them the same; inside a Bundle references are `urn:uuid:` fullUrls, in
bulk NDJSON they are `Type/id`. An entry marked entered in error is exported with status
`entered-in-error` (FHIR's way to tell a receiver that took it earlier to retract it), never dropped.
"""
import base64
import hashlib
import uuid
from dataclasses import dataclass, field

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from opsmgr.rules.session_states import SessionState

#: Fixed, so ids are stable across runs and installs: uuid5(NAMESPACE, "table/id").
NAMESPACE = uuid.UUID("5b0e8a52-3c1f-5d5e-9a63-0f3c1b7d2e41")
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN_SYSTEM = "urn:opsmgr:mrn"
DOCUMENT_SYSTEM = "urn:opsmgr:document-id"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

#: The vitals recorded, by column: (LOINC code, display, UCUM unit). Temperature and respiratory rate are
#: taken with the pre-dose vitals at the checklist only (ChecklistResponse), not in the chair.
VITALS = {
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PARTS = {"systolic": ("8480-6", "Systolic blood pressure"), "diastolic": ("8462-4", "Diastolic blood pressure")}
SCORE_TOTALS = {"PHQ-9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
                "GAD-7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]")}
#: The LOINC panels the items answer (QuestionnaireResponse.questionnaire).
QUESTIONNAIRES = {"PHQ-9": "http://loinc.org/q/44249-1", "GAD-7": "http://loinc.org/q/69737-5"}

ENCOUNTER_STATUS = {
    SessionState.CHECKED_IN: "arrived", SessionState.CHECKLIST: "triaged", SessionState.CLEARED: "triaged",
    SessionState.INFUSING: "in-progress", SessionState.RECOVERY: "in-progress",
    SessionState.DISCHARGED: "finished", SessionState.CANCELLED: "cancelled",
}
#: Sessions that never took place (booked, or the patient did not come) are appointments, not encounters.
NOT_ENCOUNTERS = frozenset({SessionState.SCHEDULED, SessionState.NO_SHOW})
EPISODE_STATUS = {"planned": "planned", "active": "active", "completed": "finished", "stopped": "finished"}
GENDER = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}
AE_OUTCOME = {"resolved": "resolved", "resolving": "recovering", "ongoing_at_discharge": "ongoing",
              "referred": "unknown"}


def resource_id(table, row_id):
    return str(uuid.uuid5(NAMESPACE, f"{table}/{row_id}"))


@dataclass
class PatientRecord:
    """Everything one patient's export reads, loaded in a constant number of statements (service.load_record)."""

    patient: object
    series: list = field(default_factory=list)
    sessions: list = field(default_factory=list)
    vitals: list = field(default_factory=list)
    #: the checklists with their pre-dose vitals (ChecklistResponse)
    checklists: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    doses: list = field(default_factory=list)
    #: session id -> ControlledSubstanceEntry
    substances: dict = field(default_factory=dict)
    #: session id -> DischargeRecord
    discharges: dict = field(default_factory=dict)
    adverse_events: list = field(default_factory=list)
    #: (ReportDocument, its bytes) of the stored signed PDFs
    documents: list = field(default_factory=list)


class References:
    """Where each exported row lives: its id, and how another resource points at it."""

    def __init__(self, bulk=False):
        self.bulk = bulk
        self.types = {}

    def add(self, resource_type, table, row_id):
        key = resource_id(table, row_id)
        self.types[(table, row_id)] = (resource_type, key)
        return key

    def to(self, table, row_id):
        """A Reference to an exported row, or None when that row is not in the export."""
        found = self.types.get((table, row_id))
        if found is None:
            return None
        resource_type, key = found
        return {"reference": f"{resource_type}/{key}" if self.bulk else f"urn:uuid:{key}"}


def _instant(moment):
    return moment.isoformat(timespec="seconds") if moment else None


def _coding(system, code, display=None):
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _loinc(code, display):
    return {"coding": [_coding(LOINC, code, display)], "text": display}


def _category(code):
    return [{"coding": [_coding(CATEGORY, code)]}]


def _compact(resource):
    """Drop keys whose value is None or empty, so the library sees only what is there."""
    return {key: value for key, value in resource.items() if value not in (None, [], {}, "")}


# --- resources ----------------------------------------------------------------------------------------

def patient_resource(patient, refs):
    key = refs.add("Patient", "patient", patient.id)
    names = [{"use": "official", "text": patient.legal_name}]
    if patient.preferred_name and patient.preferred_name != patient.legal_name:
        names.append({"use": "usual", "text": patient.preferred_name})
    telecom = [{"system": "phone", "value": patient.phone}] if patient.phone else []
    telecom += [{"system": "email", "value": patient.email}] if patient.email else []
    return _compact({
        "resourceType": "Patient", "id": key,
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": patient.mrn,
                        "type": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")]}}],
        "name": names, "telecom": telecom, "gender": GENDER.get(patient.sex_at_birth, "unknown"),
        "birthDate": patient.date_of_birth.isoformat(),
    })


def episode_resource(series, patient_ref, refs, ended_on=None):
    key = refs.add("EpisodeOfCare", "infusion_series", series.id)
    period = _compact({"start": series.start_on.isoformat(),
                       "end": ended_on.isoformat() if ended_on and series.status in ("completed", "stopped") else None})
    return _compact({
        "resourceType": "EpisodeOfCare", "id": key, "status": EPISODE_STATUS.get(series.status, "active"),
        "type": [{"text": series.protocol.label}], "patient": patient_ref, "period": period,
    })


def encounter_resource(visit, patient_ref, refs, discharged_at=None):
    key = refs.add("Encounter", "infusion_session", visit.id)
    period = _compact({"start": _instant(visit.starts_at), "end": _instant(discharged_at)})
    return _compact({
        "resourceType": "Encounter", "id": key, "status": ENCOUNTER_STATUS[SessionState(visit.status)],
        "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
        "type": [{"text": f"Ketamine infusion session {visit.number} of the series"}],
        "subject": patient_ref, "episodeOfCare": [refs.to("infusion_series", visit.series_id)],
        "period": period,
    })


def _status(entry, final="final"):
    return "entered-in-error" if entry.is_entered_in_error else final


def vital_resources(reading, patient_ref, refs, *, table="vital_sign", taken_at=None, status=None):
    """The reading's Observations: a blood-pressure panel (systolic and diastolic as components), heart
    rate, SpO2, temperature and respiratory rate, each only when measured. A checklist's pre-dose vitals
    come as table "checklist_response" with their time and status given."""
    base = {"resourceType": "Observation", "status": status or _status(reading), "category": _category("vital-signs"),
            "subject": patient_ref, "encounter": refs.to("infusion_session", reading.session_id),
            "effectiveDateTime": _instant(taken_at or reading.taken_at)}
    resources = []
    components = [{"code": _loinc(code, display), "valueQuantity": _quantity(value, "mm[Hg]")}
                  for part, (code, display) in BP_PARTS.items() if (value := getattr(reading, part)) is not None]
    if components:
        key = refs.add("Observation", table, f"{reading.id}/bp")
        resources.append(_compact({**base, "id": key, "code": _loinc(*BP_PANEL), "component": components}))
    for column, (code, display, unit) in VITALS.items():
        value = getattr(reading, column, None)
        if value is not None:
            key = refs.add("Observation", table, f"{reading.id}/{column}")
            coding = _loinc(code, display)
            if column == "spo2":  # US Core's pulse oximetry profile asks for both codes
                coding["coding"].append(_coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"))
            resources.append(_compact({**base, "id": key, "code": coding, "valueQuantity": _quantity(value, unit)}))
    return resources


def _quantity(value, unit):
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def score_resources(score, patient_ref, refs):
    """The items as a QuestionnaireResponse and (when complete) the total as an Observation derived from it."""
    response_key = refs.add("QuestionnaireResponse", "score", score.id)
    items = [{"linkId": str(number), "answer": [{"valueInteger": answer}]}
             for number, answer in enumerate(score.items, start=1) if answer is not None]
    if score.difficulty is not None:
        items.append({"linkId": "difficulty", "answer": [{"valueInteger": score.difficulty}]})
    status = "entered-in-error" if score.is_entered_in_error else ("completed" if score.is_complete else "in-progress")
    encounter = refs.to("infusion_session", score.session_id) if score.session_id else None
    resources = [_compact({
        "resourceType": "QuestionnaireResponse", "id": response_key, "questionnaire": QUESTIONNAIRES[score.instrument],
        "status": status, "subject": patient_ref, "encounter": encounter,
        "authored": _instant(score.taken_at), "item": items,
    })]
    if score.is_complete:
        key = refs.add("Observation", "score", f"{score.id}/total")
        resources.append(_compact({
            "resourceType": "Observation", "id": key, "status": _status(score), "category": _category("survey"),
            "code": _loinc(*SCORE_TOTALS[score.instrument]), "subject": patient_ref, "encounter": encounter,
            "effectiveDateTime": _instant(score.taken_at), "valueInteger": score.total,
            "interpretation": [{"text": score.band}] if score.band else None,
            "derivedFrom": [refs.to("score", score.id)],
        }))
    return resources


def medication_resource(substance, refs):
    """The product given, with the lot and expiry from the controlled-substance record."""
    key = refs.add("Medication", "controlled_substance_entry", substance.id)
    return {"resourceType": "Medication", "id": key,
            "code": {"coding": [_coding(RXNORM, "6130", "ketamine")], "text": substance.product},
            "batch": {"lotNumber": substance.lot, "expirationDate": substance.expiry_on.isoformat()}}


def administration_resource(dose, substance, patient_ref, refs):
    key = refs.add("MedicationAdministration", "dose_record", dose.id)
    given = substance.given_mg if substance is not None else dose.dose_mg
    text = f"{_plain(dose.dose_mg)} mg"
    if dose.mg_per_kg is not None:
        text = f"{_plain(dose.mg_per_kg)} mg/kg × {_plain(dose.weight_kg)} kg = {_plain(dose.dose_mg)} mg"
    if substance is not None and substance.given_mg != dose.dose_mg:
        text += f"; {_plain(substance.given_mg)} mg given"
    started = dose.dose_started_at or dose.recorded_at
    effective = ({"effectivePeriod": {"start": _instant(started), "end": _instant(dose.infusion_ended_at)}}
                 if dose.infusion_ended_at else {"effectiveDateTime": _instant(started)})
    medication = (refs.to("controlled_substance_entry", substance.id) if substance is not None else None)
    return _compact({
        "resourceType": "MedicationAdministration", "id": key, "status": "completed",
        **({"medicationReference": medication} if medication else
           {"medicationCodeableConcept": {"coding": [_coding(RXNORM, "6130", "ketamine")], "text": "Ketamine"}}),
        "subject": patient_ref, "context": refs.to("infusion_session", dose.session_id), **effective,
        "dosage": {"text": text, "dose": {"value": given, "unit": "mg", "system": UCUM, "code": "mg"}},
    })


def _plain(number):
    """A Decimal without trailing zeros: 0.500 is 0.5, 35.0 is 35."""
    return f"{number.normalize():f}" if number is not None else "?"


def adverse_event_resource(event, labels, patient_ref, refs, administration=None):
    key = refs.add("AdverseEvent", "adverse_event", event.id)
    name = event.other_kind if event.kind == "other" and event.other_kind else labels.get(event.kind, event.kind)
    return _compact({
        "resourceType": "AdverseEvent", "id": key, "actuality": "actual", "event": {"text": name},
        "subject": patient_ref, "encounter": refs.to("infusion_session", event.session_id),
        "date": _instant(event.onset_at), "recordedDate": _instant(event.recorded_at),
        "severity": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                                        event.severity)]},
        "outcome": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                                       AE_OUTCOME[event.outcome])]},
        "suspectEntity": [{"instance": administration}] if administration else None,
    })


def document_resource(document, content, url, patient_ref, refs):
    """A signed PDF: where to GET it and, per FHIR's Attachment, its size and base64 SHA-1."""
    key = refs.add("DocumentReference", "report_document", document.id)
    title = "Session summary" if document.kind == "session" else "Series summary"
    context = _compact({"encounter": [refs.to("infusion_session", document.session_id)]
                        if document.session_id else None})
    return _compact({
        "resourceType": "DocumentReference", "id": key,
        "masterIdentifier": {"system": DOCUMENT_SYSTEM, "value": document.document_id},
        "status": "current", "type": _loinc("34133-9", "Summary of episode note"), "subject": patient_ref,
        "date": _instant(document.created_at),
        "content": [{"attachment": {"contentType": "application/pdf", "url": url, "size": len(content),
                                    "hash": attachment_hash(content),
                                    "title": f"{title} {document.document_id}",
                                    "creation": _instant(document.created_at)}}],
        "context": context,
    })


def attachment_hash(content):
    """FHIR's Attachment.hash: the base64 SHA-1 of the bytes (a checksum the standard fixes, not a security
    control; the stored SHA-256 is what opsmgr checks)."""
    return base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest()).decode("ascii")


# --- the whole record ---------------------------------------------------------------------------------

def resources(record, *, document_url, ae_labels, bulk=False):
    """[resource dict]: the patient first, then what points at earlier entries (so references resolve)."""
    refs = References(bulk=bulk)
    out = [patient_resource(record.patient, refs)]
    patient_ref = refs.to("patient", record.patient.id)
    last_day = {}
    for visit in record.sessions:
        last_day[visit.series_id] = visit.starts_at.date()
    out += [episode_resource(series, patient_ref, refs, last_day.get(series.id)) for series in record.series]
    out += [encounter_resource(visit, patient_ref, refs, _discharged_at(record, visit.id))
            for visit in record.sessions if SessionState(visit.status) not in NOT_ENCOUNTERS]
    for checklist in record.checklists:  # the pre-dose vitals, when they were taken
        if checklist.vitals_taken_at is not None:
            out += vital_resources(checklist, patient_ref, refs, table="checklist_response",
                                   taken_at=checklist.vitals_taken_at, status="final")
    for reading in record.vitals:
        out += vital_resources(reading, patient_ref, refs)
    for score in record.scores:
        out += score_resources(score, patient_ref, refs)
    out += [medication_resource(substance, refs) for substance in record.substances.values()]
    administrations = {}
    for dose in record.doses:
        out.append(administration_resource(dose, record.substances.get(dose.session_id), patient_ref, refs))
        administrations[dose.session_id] = refs.to("dose_record", dose.id)
    out += [adverse_event_resource(event, ae_labels, patient_ref, refs, administrations.get(event.session_id))
            for event in record.adverse_events]
    out += [document_resource(document, content, document_url(document), patient_ref, refs)
            for document, content in record.documents]
    return [_without_dangling(resource) for resource in out]


def _discharged_at(record, session_id):
    discharge = record.discharges.get(session_id)
    return discharge.discharged_at if discharge else None


def _without_dangling(resource):
    """References to rows outside the export (a reading of a session that never took place) are left out."""
    if isinstance(resource, dict):
        return {key: _without_dangling(value) for key, value in resource.items() if value is not None}
    if isinstance(resource, list):
        return [_without_dangling(value) for value in resource if value is not None]
    return resource


def bundle(record, *, document_url, ae_labels, now):
    """The patient's Bundle (type collection), validated by the library; returns the Bundle model."""
    entries = [{"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
               for resource in resources(record, document_url=document_url, ae_labels=ae_labels)]
    return Bundle.model_validate({"resourceType": "Bundle", "id": resource_id("bundle", record.patient.id),
                                  "type": "collection", "timestamp": _instant(now), "entry": entries})


def validated(resource):
    """One resource dict checked by its library model; returns the model."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def to_json(model):
    return model.model_dump_json(by_alias=True, exclude_none=True)


def counts(model):
    """{resource type: how many} of a Bundle, for the audit row."""
    found = {}
    for entry in model.entry or ():
        name = entry.resource.get_resource_type()
        found[name] = found.get(name, 0) + 1
    return found
