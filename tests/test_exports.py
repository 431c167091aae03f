"""Exports: a patient's FHIR R4 Bundle parsed back and validated by `fhir.resources` (LOINC codes, references
resolving inside it, entered-in-error, an empty record), the bulk NDJSON, the admins' CSV (formula cells
neutralised), and the accounting of disclosures. Rows are written straight to the tables, not walked
through the chair pages, to keep the module fast."""
import csv
import hashlib
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from opsmgr.audit.models import AuditEvent
from opsmgr.checklist.models import ChecklistResponse
from opsmgr.exports import fhir
from opsmgr.extensions import db
from opsmgr.infusion.models import ControlledSubstanceEntry, DischargeRecord, DoseRecord, VitalSign
from opsmgr.notes.models import AdverseEvent
from opsmgr.reports.models import ReportDocument
from opsmgr.scores.models import Score
from tests.factories import create_chairs, create_patient, create_user, order_series
from tests.sql import count_statements

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
PDF = b"%PDF-1.7\n% a stand-in for a signed summary\n%%EOF\n"


def add_session_data(visit, staff, now, *, with_document=False):
    """A held session: two readings (the second entered in error), PHQ-9 and GAD-7, dose, controlled
    substance, an adverse event and the discharge; optionally a stored signed summary."""
    visit.status = "discharged"
    nurse, witness = staff
    taken = visit.starts_at + timedelta(minutes=10)
    db.session.add_all([
        VitalSign(session_id=visit.id, taken_at=taken, systolic=128, diastolic=82, heart_rate=71, spo2=98,
                  moaas=5, recorded_by_id=nurse, recorded_at=taken),
        VitalSign(session_id=visit.id, taken_at=taken, systolic=210, diastolic=130, heart_rate=None, spo2=None,
                  recorded_by_id=nurse, recorded_at=taken, entered_in_error_at=taken,
                  entered_in_error_by_id=nurse, entered_in_error_reason="Wrong patient's cuff"),
        Score(patient_id=visit.patient_id, session_id=visit.id, instrument="PHQ-9", items=[2, 2, 1, 1, 1, 1, 0, 0, 1],
              difficulty=1, total=9, band="mild", taken_at=visit.starts_at, source="checklist",
              recorded_by_id=nurse, recorded_at=visit.starts_at),
        Score(patient_id=visit.patient_id, session_id=visit.id, instrument="GAD-7", items=[1, 1, 1, 1, 0, 0, 1],
              total=5, band="mild", taken_at=visit.starts_at, source="checklist", recorded_by_id=nurse,
              recorded_at=visit.starts_at),
        DoseRecord(session_id=visit.id, mg_per_kg=Decimal("0.5"), weight_kg=Decimal("70.0"), dose_mg=Decimal("35.0"),
                   infusion_minutes=40, dose_started_at=taken, infusion_ended_at=taken + timedelta(minutes=40),
                   recorded_at=taken, recorded_by_id=nurse),
        ControlledSubstanceEntry(session_id=visit.id, product="Ketamine 50 mg/mL", lot="LOT-7",
                                 expiry_on=date(2027, 6, 1), drawn_mg=Decimal("50.0"), given_mg=Decimal("35.0"),
                                 wasted_mg=Decimal("15.0"),
                                 recorded_by_id=nurse, witness_id=witness, recorded_at=taken),
        AdverseEvent(session_id=visit.id, kind="nausea", onset_at=taken, severity="mild", outcome="resolved",
                     recorded_at=taken, recorded_by_id=nurse),
        DischargeRecord(session_id=visit.id, moaas=5, escort_present=True, instructions_given=True,
                        discharged_at=taken + timedelta(minutes=90), discharged_by_id=nurse),
        ChecklistResponse(session_id=visit.id, systolic=124, diastolic=80, heart_rate=72, spo2=98,
                          temperature_c=Decimal("36.7"), respiratory_rate=14, vitals_taken_at=visit.starts_at,
                          updated_at=visit.starts_at, updated_by_id=nurse),
    ])
    if with_document:
        db.session.add(ReportDocument(document_id=f"DOC{visit.id}X", kind="session", patient_id=visit.patient_id,
                                      session_id=visit.id, series_id=visit.series_id,
                                      sha256=hashlib.sha256(PDF).hexdigest(), content=PDF, created_at=now))


def make_patient(clock, staff, held, *, mrn, documents=True):
    """A patient with a series whose first ``held`` sessions took place (the rest still booked)."""
    patient = create_patient(now=clock(), mrn=mrn)
    if held:
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        for visit in series.sessions[:held]:
            add_session_data(visit, staff, clock(), with_document=documents)
        db.session.commit()
    return patient.id


@pytest.fixture
def world(app, clock):
    """Patients with one held session, with three, and with none; a nurse and a witness."""
    with app.app_context():
        create_chairs(2)
        staff = tuple(create_user(role="nurse", username=name, password="a nurse passphrase", now=clock()).id
                      for name in ("nurse-a", "nurse-b"))
        return {"one": make_patient(clock, staff, 1, mrn="FHIR-1"),
                "three": make_patient(clock, staff, 3, mrn="FHIR-3", documents=False),
                "none": make_patient(clock, staff, 0, mrn="FHIR-0")}


def references(value):
    """Every Reference.reference inside a resource (contained resources are not used)."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for item in value.values() for ref in references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in references(item)]
    return []


def codes(resource):
    return {coding["code"] for coding in resource.get("code", {}).get("coding", [])}


def test_the_bundle_parses_validates_carries_loinc_codes_and_resolves_every_reference(app, world, login_as):
    physician = login_as("physician")
    response = physician.get(f"/patients/{world['one']}/fhir.json")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate_json(response.get_data())  # the library parses and validates it all
    assert bundle.type == "collection"
    data = json.loads(response.get_data())
    resources = [entry["resource"] for entry in data["entry"]]
    by_type = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert {"Patient", "EpisodeOfCare", "Encounter", "Observation", "QuestionnaireResponse", "Medication",
            "MedicationAdministration", "AdverseEvent", "DocumentReference"} <= set(by_type)
    full_urls = {entry["fullUrl"] for entry in data["entry"]}
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    assert all(ref in full_urls for resource in resources for ref in references(resource))

    observations = by_type["Observation"]
    vitals = [obs for obs in observations if obs["category"][0]["coding"][0]["code"] == "vital-signs"]
    surveys = [obs for obs in observations if obs["category"][0]["coding"][0]["code"] == "survey"]
    panels = [obs for obs in vitals if codes(obs) == {"85354-9"}]
    assert {c["code"]["coding"][0]["code"] for c in panels[0]["component"]} == {"8480-6", "8462-4"}
    assert {"8867-4"} in [codes(obs) for obs in vitals] and any("59408-5" in codes(obs) for obs in vitals)
    # The checklist's pre-dose vitals: its temperature and respiratory rate, and a third BP panel.
    [temperature] = [obs for obs in vitals if codes(obs) == {"8310-5"}]
    assert temperature["valueQuantity"]["value"] == 36.7 and temperature["valueQuantity"]["code"] == "Cel"
    [breathing] = [obs for obs in vitals if codes(obs) == {"9279-1"}]
    assert breathing["valueQuantity"]["value"] == 14
    assert sorted(obs["status"] for obs in panels) == ["entered-in-error", "final", "final"]
    assert {frozenset(codes(obs)) for obs in surveys} == {frozenset({"44261-6"}), frozenset({"70274-6"})}
    assert {obs["valueInteger"] for obs in surveys} == {9, 5}
    assert sorted(len(qr["item"]) for qr in by_type["QuestionnaireResponse"]) == [7, 10]
    [encounter] = by_type["Encounter"]
    assert encounter["status"] == "finished"
    [administration] = by_type["MedicationAdministration"]
    assert administration["dosage"]["dose"] == {"value": 35.0, "unit": "mg", "system": "http://unitsofmeasure.org",
                                                "code": "mg"}
    assert "0.5 mg/kg" in administration["dosage"]["text"]
    assert by_type["Medication"][0]["batch"]["lotNumber"] == "LOT-7"
    [document] = by_type["DocumentReference"]
    attachment = document["content"][0]["attachment"]
    assert attachment["url"].endswith(f"/reports/documents/{document['masterIdentifier']['value']}.pdf")
    assert attachment["size"] == len(PDF) and attachment["hash"] == fhir.attachment_hash(PDF)
    again = json.loads(physician.get(f"/patients/{world['one']}/fhir.json").get_data())
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in data["entry"]]  # stable ids
    with app.app_context():
        [event, _] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export.fhir")).all()
    details = json.loads(event.details)
    assert event.patient_id == world["one"] and details["Observation"] == len(observations)
    assert "FHIR-1" not in event.details


@SQLITE
def test_a_patient_with_no_sessions_is_a_small_valid_bundle_and_statements_do_not_grow(app, world, login_as):
    physician = login_as("physician")
    empty = physician.get(f"/patients/{world['none']}/fhir.json")
    bundle = Bundle.model_validate_json(empty.get_data())
    assert [entry.resource.get_resource_type() for entry in bundle.entry] == ["Patient"]
    counts = []
    for key in ("one", "three"):
        with count_statements(app) as statements:
            assert physician.get(f"/patients/{world[key]}/fhir.json").status_code == 200
        counts.append(statements["n"])
    assert counts[0] == counts[1], counts


@SQLITE
def test_bulk_ndjson_per_resource_type_validates_and_audits_each_patient(app, world, runner, tmp_path):
    result = runner.invoke(args=["export", "fhir", "--all", "--out", str(tmp_path / "bulk")])
    assert result.exit_code == 0, result.output
    files = {path.name: path for path in (tmp_path / "bulk").iterdir()}
    assert {"Patient.ndjson", "Observation.ndjson", "Encounter.ndjson"} <= set(files)
    ids = {}
    for name, path in files.items():
        for line in path.read_text().splitlines():
            resource = fhir.validated(json.loads(line))
            ids[f"{resource.get_resource_type()}/{resource.id}"] = resource
            assert resource.get_resource_type() == name.removesuffix(".ndjson")
    assert len([key for key in ids if key.startswith("Patient/")]) == 3
    assert all(ref in ids for resource in ids.values()
               for ref in references(json.loads(resource.model_dump_json(by_alias=True, exclude_none=True))))
    single = tmp_path / "one.json"
    assert runner.invoke(args=["export", "fhir", "--patient", "FHIR-1", "--out", str(single)]).exit_code == 0
    Bundle.model_validate_json(single.read_bytes())
    assert runner.invoke(args=["export", "fhir", "--patient", "NOPE", "--out", str(single)]).exit_code == 2
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("export.%"))).all()
    assert actions.count("export.fhir") == 4 and actions.count("export.fhir_bulk") == 1


@SQLITE
def test_csv_neutralises_a_formula_cell_and_refuses_a_bad_range_at_its_field(app, world, login_as, clock, runner,
                                                                              tmp_path):
    with app.app_context():
        patient = create_patient(now=clock(), mrn="CSV-1", legal_name='=HYPERLINK("http://evil.example","x")')
        series = order_series(patient_id=patient.id, now=clock(), start_on=date(2026, 11, 30))
        series.sessions[0].status = "discharged"
        db.session.commit()
    admin = login_as("admin")
    query = "kind=patients&start=2026-11-01&end=2026-12-31"
    response = admin.get(f"/admin/exports/export.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    names = {row[0]: row[1] for row in rows[1:]}
    assert names["CSV-1"] == "'" + '=HYPERLINK("http://evil.example","x")'  # shown as text, never run
    assert set(names) == {"CSV-1", "FHIR-1", "FHIR-3"}
    bad = admin.get("/admin/exports/export.csv?kind=vitals&start=2026-11-30&end=2026-11-01")
    assert bad.status_code == 400 and "The end date is before the start date." in bad.get_data(as_text=True)
    out = tmp_path / "vitals.csv"
    result = runner.invoke(args=["export", "csv", "--kind", "vitals", "--since", "2026-11-01", "--until",
                                 "2026-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1 + 2 * 4  # header, two readings of each held session
    with app.app_context():
        details = [json.loads(d) for d in db.session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "export.csv").order_by(AuditEvent.id))]
    assert details[0] == {"kind": "patients", "since": "2026-11-01", "until": "2026-12-31", "rows": 3,
                          "patients": 3, "via": "web"}
    assert details[1]["rows"] == 8 and details[1]["via"] == "cli"


@SQLITE
def test_disclosures_list_an_export_a_pdf_download_and_a_covering_csv_in_constant_statements(app, world, login_as):
    physician, admin = login_as("physician"), login_as("admin")
    with app.app_context():
        document_id = db.session.scalar(select(ReportDocument.document_id)
                                        .where(ReportDocument.patient_id == world["one"]))
    assert physician.get(f"/patients/{world['one']}/fhir.json").status_code == 200
    assert physician.get(f"/reports/documents/{document_id}.pdf").status_code == 200
    assert admin.get("/admin/exports/export.csv?kind=sessions&start=2026-11-30&end=2026-12-01").status_code == 200
    assert admin.get("/admin/exports/export.csv?kind=sessions&start=2027-01-01&end=2027-01-31").status_code == 200
    with count_statements(app) as few:
        page = physician.get(f"/patients/{world['one']}/disclosures").get_data(as_text=True)
    assert "FHIR R4 export" in page and f"Signed PDF downloaded: session summary {document_id}" in page
    assert "2026-11-30 to 2026-12-01" in page and "2027-01-01" not in page and "3 disclosures" in page
    assert "(Admin)" in page and "(admin)" not in page, "the role in words, not its code"
    for _ in range(3):
        physician.get(f"/patients/{world['one']}/fhir.json")
    with count_statements(app) as many:
        assert "6 disclosures" in physician.get(f"/patients/{world['one']}/disclosures").get_data(as_text=True)
    assert few["n"] == many["n"]
    lookup = admin.get("/admin/exports/disclosures?mrn=FHIR-1")
    assert lookup.status_code == 302 and lookup.headers["Location"].endswith(f"/patients/{world['one']}/disclosures")
    missing = admin.get("/admin/exports/disclosures?mrn=NOBODY")
    assert missing.status_code == 400 and "No patient has this MRN." in missing.get_data(as_text=True)
    assert admin.get(f"/patients/{world['one']}/disclosures").status_code == 200
    assert admin.get(f"/patients/{world['one']}/fhir.json").status_code == 403



@SQLITE
def test_every_demo_patient_exports_as_valid_ndjson(demo_clinic, tmp_path):
    """The demo clinic's real records (signed sessions with their PDFs, phone scores, stopped series): the
    bulk export validates every resource with the library as it writes it."""
    result = demo_clinic.app.test_cli_runner().invoke(args=["export", "fhir", "--all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    encounters = (tmp_path / "Encounter.ndjson").read_text().splitlines()
    assert encounters and "Observation" in result.output
    for line in encounters:
        fhir.validated(json.loads(line))
