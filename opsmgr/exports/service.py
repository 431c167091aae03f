"""FHIR exports of one patient or of all: load in a constant number of statements, build, validate, audit."""
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from opsmgr.audit.service import record
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.exports import fhir
from opsmgr.extensions import db
from opsmgr.infusion.models import ControlledSubstanceEntry, DischargeRecord, DoseRecord, VitalSign
from opsmgr.notes.models import AdverseEvent
from opsmgr.patients.models import Patient
from opsmgr.reports.models import ReportDocument
from opsmgr.scores.models import Score
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.models import InfusionSession


def ae_labels():
    from opsmgr.notes.forms import AE_KIND_LABELS

    return AE_KIND_LABELS


def _of_patient(model, patient_id, order):
    """Rows of a session-owned table for one patient, through their sessions (one statement)."""
    return list(db.session.scalars(
        select(model).join(InfusionSession, InfusionSession.id == model.session_id)
        .where(InfusionSession.patient_id == patient_id).order_by(*order)))


def load_record(patient):
    """The patient's exportable rows: eleven statements whatever the number of series and sessions."""
    pid = patient.id
    series = list(db.session.scalars(select(InfusionSeries).where(InfusionSeries.patient_id == pid)
                                     .options(selectinload(InfusionSeries.protocol)).order_by(InfusionSeries.id)))
    sessions = list(db.session.scalars(select(InfusionSession).where(InfusionSession.patient_id == pid)
                                       .order_by(InfusionSession.starts_at, InfusionSession.id)))
    documents = db.session.execute(select(ReportDocument, ReportDocument.content)
                                   .where(ReportDocument.patient_id == pid).order_by(ReportDocument.id)).all()
    return fhir.PatientRecord(
        patient=patient, series=series, sessions=sessions,
        vitals=_of_patient(VitalSign, pid, (VitalSign.taken_at, VitalSign.id)),
        checklists=_of_patient(ChecklistResponse, pid, (ChecklistResponse.id,)),
        scores=list(db.session.scalars(select(Score).where(Score.patient_id == pid)
                                       .order_by(Score.taken_at, Score.id))),
        doses=_of_patient(DoseRecord, pid, (DoseRecord.id,)),
        substances={row.session_id: row for row in _of_patient(ControlledSubstanceEntry, pid,
                                                                 (ControlledSubstanceEntry.id,))},
        discharges={row.session_id: row for row in _of_patient(DischargeRecord, pid, (DischargeRecord.id,))},
        adverse_events=_of_patient(AdverseEvent, pid, (AdverseEvent.onset_at, AdverseEvent.id)),
        documents=[(document, content) for document, content in documents],
    )


def counted(counts):
    """Audit details of resource counts (flat, as audit details are): the total and one key per type,
    named as the type is (capitalised, so apart from the other keys)."""
    return {"resources": sum(counts.values()), **counts}


def document_url(base):
    """Where a DocumentReference says its PDF is: GET /reports/documents/<document ID>.pdf under ``base``."""
    root = (base or "").rstrip("/")
    return lambda document: f"{root}/reports/documents/{document.document_id}.pdf"


def patient_bundle(patient, *, base_url, actor, now, via):
    """The patient's validated Bundle as FHIR JSON, audited as a disclosure with its resource counts."""
    model = fhir.bundle(load_record(patient), document_url=document_url(base_url), ae_labels=ae_labels(), now=now)
    counts = fhir.counts(model)
    record("export.fhir", actor=actor, now=now, object_type="patient", object_id=patient.id, patient_id=patient.id,
           details={"scope": "patient", "format": "fhir-bundle", "via": via, **counted(counts)})
    return fhir.to_json(model), counts


def patient_ids():
    return list(db.session.scalars(select(Patient.id).order_by(Patient.id)))


def bulk_patient(patient_id, *, base_url, actor, now):
    """{resource type: [NDJSON line]} for one patient (references as Type/id), audited as a disclosure;
    the caller commits."""
    patient = db.session.get(Patient, patient_id)
    lines, counts = {}, {}
    for resource in fhir.resources(load_record(patient), document_url=document_url(base_url),
                                   ae_labels=ae_labels(), bulk=True):
        name = resource["resourceType"]
        lines.setdefault(name, []).append(fhir.to_json(fhir.validated(resource)))
        counts[name] = counts.get(name, 0) + 1
    record("export.fhir", actor=actor, now=now, object_type="patient", object_id=patient_id, patient_id=patient_id,
           details={"scope": "all", "format": "fhir-ndjson", "via": "cli", **counted(counts)})
    return lines


def audit_bulk(counts, patients, *, actor, now):
    record("export.fhir_bulk", actor=actor, now=now,
           details={"scope": "all", "format": "fhir-ndjson", "patients": patients, **counted(counts)})
