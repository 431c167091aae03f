"""PDF reports: the session summary's data (worked example, no PDF), the fetcher's refusals, a signed
summary stored once and sent byte-identical (tampering refused and audited), and the DRAFT preview
(never stored, payloads printed as text). Each PDF is rendered once per test that needs it."""
import hashlib
import json
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import SYSTEM
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.reports import data, service
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.render import ReportError, css_string, fetcher, refused_url_error, render_pdf
from opsmgr.rules.findings import Finding, Severity
from tests.browser.test_note_xss import PAYLOADS
from tests.test_notes import chairs, completed, discharged, save, signed  # noqa: F401 - fixtures used below

STATIC = Path(__file__).resolve().parent.parent / "opsmgr" / "static"
NEW_YORK = ZoneInfo("America/New_York")
LONG_WORD = "W" * 10_000


@pytest.fixture
def signed_session(request):
    """(session id, nurse, physician): a session walked to discharge, its note signed (tests/test_notes.py)."""
    return request.getfixturevalue("signed")


@pytest.fixture
def discharged_session(request):
    """(session id, nurse): a session walked to discharge, no note yet (tests/test_notes.py)."""
    return request.getfixturevalue("discharged")


def pdf_url(session_id):
    return f"/sessions/{session_id}/summary.pdf"


def pdf_text(content, tmp_path, page=None, mode="-layout"):
    path = tmp_path / f"{hashlib.sha256(content).hexdigest()[:12]}.pdf"
    path.write_bytes(content)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", mode, *pages, str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def body_text(content, tmp_path, running=()):
    """The text in drawing order without the running header, footer and watermark, whitespace removed."""
    lines = pdf_text(content, tmp_path, mode="-raw").splitlines()
    return squeezed("".join(line for line in lines if not line.startswith(("Confidential", "DRAFT", "Page ",
                                                                             *running))))


def page_count(content, tmp_path):
    path = tmp_path / "count.pdf"
    path.write_bytes(content)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def qpdf_check(content, tmp_path):
    path = tmp_path / "check.pdf"
    path.write_bytes(content)
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def squeezed(text):
    return "".join(text.split())


def audit_rows(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).all()


def stored_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ReportDocument))


# --- data, no PDF --------------------------------------------------------------------------------

def at(hour, minute):
    return datetime(2026, 12, 3, hour, minute, tzinfo=UTC)


def worked_record():
    """A signed session of a six-session series, readings at 15:10 and 15:20 UTC (10:10 and 10:20 in New
    York), the second marked entered in error, one override, one pause, one addendum."""
    patient = SimpleNamespace(legal_name="Ada Österberg", preferred_name="", mrn="MRN-0042",
                              date_of_birth=date(1980, 2, 29))
    protocol = SimpleNamespace(name="IV induction", code="iv-induction", version=2)
    visit = SimpleNamespace(patient=patient, series=SimpleNamespace(protocol=protocol, planned_count=6), number=3,
                            starts_at=at(15, 0), ends_at=at(17, 0), chair=SimpleNamespace(name="Chair 1"),
                            status="completed")
    vitals = (
        SimpleNamespace(id=1, taken_at=at(15, 10), systolic=128, diastolic=80, heart_rate=72, spo2=98, moaas=5,
                        recorded_by_id=7, entered_in_error_at=None, entered_in_error_by_id=None,
                        entered_in_error_reason=None, is_entered_in_error=False),
        SimpleNamespace(id=2, taken_at=at(15, 20), systolic=210, diastolic=120, heart_rate=None, spo2=None,
                        moaas=None, recorded_by_id=7, entered_in_error_at=at(15, 25), entered_in_error_by_id=7,
                        entered_in_error_reason="Cuff on the wrong arm", is_entered_in_error=True),
    )
    note = SimpleNamespace(signed_at=at(18, 5), signer_name="Dr Rui Tan", signer_credentials="MD",
                           content_hash="ab" * 32, narrative="Settled.", eye_mask=True, dissociation_clinician=6,
                           **{name: "" for name in ("mindset", "intention", "expectations", "worries", "music",
                                                    "lighting", "room", "support_person", "setting_changes",
                                                    "emotional_tone", "themes", "perceptual_effects", "quotes",
                                                    "ending", "post_session_state", "integration_plan")},
                           dissociation_patient=None)
    return SimpleNamespace(
        infusion_session=visit, policy_versions=(1, 2), staff={7: "Nia Nurse, RN", 9: "Dr Rui Tan, MD"},
        checklist=SimpleNamespace(outcome="cleared_with_override", evaluated_at=at(14, 50), policy_version=2),
        checklist_findings=(Finding("BP_SOFT_GATE", Severity.NEEDS_PHYSICIAN, "Systolic 150 mmHg: review"),),
        overrides=(SimpleNamespace(gate="start", code="BP_SOFT_GATE", finding={"message": "Systolic 150 mmHg"},
                                   reason="Anxious; repeat 138", physician_id=9, created_at=at(14, 55)),),
        vitals=vitals, counted_vitals=vitals[:1], alerts=(), withdrawn={},
        infusion_events=(SimpleNamespace(occurred_at=at(15, 30), kind="pause", note="Nausea", recorded_by_id=7),),
        dose=SimpleNamespace(mg_per_kg=Decimal("0.500"), weight_kg=Decimal("70.0"), dose_mg=Decimal("35.0"),
                             infusion_minutes=40, dose_started_at=at(15, 5), infusion_ended_at=at(15, 45),
                             change_reason="", changed_by_id=None, policy_version=2),
        dose_order=None, controlled_substance=None, adverse_events=(), discharge=None, note=note,
        addenda=(SimpleNamespace(author_name="Nia Nurse", author_credentials="RN", signed_at=at(20, 0),
                                 reason="Late entry", body="Called: fine.", event_at=None, content_hash="cd" * 32),))


def test_the_session_summary_prints_clinic_times_units_and_who():
    summary = data.session_summary(worked_record(), zone=NEW_YORK)
    assert summary["patient"] == {"name": "Ada Österberg", "preferred_name": "", "mrn": "MRN-0042",
                                  "date_of_birth": "29 Feb 1980"}
    assert summary["session"]["position"] == "Session 3 of 6"
    assert summary["session"]["protocol"] == "IV induction (iv-induction, version 2)"
    assert summary["session"]["date"] == "03 Dec 2026" and summary["session"]["time"] == "10:00–12:00"
    assert summary["session"]["policy_versions"] == "1, 2"
    assert summary["checklist"]["findings"] == [{"severity": "Needs a physician's override", "code": "BP_SOFT_GATE",
                                                 "message": "Systolic 150 mmHg: review"}]
    [override] = summary["overrides"]
    assert (override["by"], override["reason"], override["at"]) == ("Dr Rui Tan, MD", "Anxious; repeat 138",
                                                                    "03 Dec 2026 09:55")
    first, wrong = summary["vitals"]
    assert (first["time"], first["bp"], first["heart_rate"], first["spo2"]) == ("10:10", "128/80 mmHg", "72 /min",
                                                                                "98 %")
    assert wrong["in_error"] and wrong["heart_rate"] == "—" and "Cuff on the wrong arm" in wrong["in_error_note"]
    [(taken_at, *values)] = summary["chart_points"]
    assert taken_at.tzinfo == NEW_YORK and taken_at.hour == 10 and values == [128, 80, 72, 98]
    assert summary["events"] == [{"time": "10:30", "kind": "Paused", "note": "Nausea", "by": "Nia Nurse, RN"}]
    assert summary["dose"]["amount"] == "0.5 mg/kg × 70 kg = 35 mg" and summary["dose"]["minutes"] == "40 min"
    assert summary["note"] == [("Setting", [("Eye mask", "Yes")]),
                               ("Experience", [("Dissociation (clinician, 0-10)", "6")]),
                               ("After the session", [("Narrative", "Settled.")])]
    assert summary["signature"]["signer"] == "Dr Rui Tan, MD"
    assert summary["signature"]["signed_at"] == "03 Dec 2026 13:05 EST"
    assert summary["signature"]["sha256"] == "ab" * 32
    assert summary["addenda"][0]["signer"] == "Nia Nurse, RN" and summary["addenda"][0]["signed_at"].endswith("EST")


def test_an_unsigned_record_has_no_signature_and_css_strings_cannot_break_out():
    rec = worked_record()
    rec.note.signed_at = None
    assert data.session_summary(rec, zone=NEW_YORK)["signature"] is None
    assert css_string('a"b;}</style>') == '"a\\000022b\\00003b\\00007d\\00003c\\00002fstyle\\00003e"'


def test_the_fetcher_serves_static_files_only():
    fetch = fetcher(STATIC, {"chart.svg": (b"<svg/>", "image/svg+xml")})
    assert b"@page" in fetch.fetch((STATIC / "css" / "report.css").as_uri()).read()
    assert fetch.fetch("opsmgr-asset:chart.svg").read() == b"<svg/>"
    outside = STATIC.parent.parent / "config.py"
    for url in ("http://127.0.0.1/x.css", "https://example.org/font.woff2", "ftp://example.org/a",
                "file:///etc/passwd", outside.as_uri(), (STATIC / ".." / ".." / "config.py").as_uri(),
                "data:text/css,body{}", "opsmgr-asset:other.svg"):
        with pytest.raises(refused_url_error()):
            fetch.fetch(url)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_broken_template_is_a_clear_error_and_no_pdf(app):
    with app.test_request_context(), pytest.raises(ReportError, match="reports/missing.html"):
        render_pdf("reports/missing.html")


# --- the signed summary: stored once, sent the same, refused when tampered ----------------------

def test_a_signed_summary_is_stored_once_sent_identical_and_refused_when_tampered(app, signed_session, backend,
                                                                                  tmp_path, login_as, clock):
    session_id, nurse, physician = signed_session
    assert f'href="{pdf_url(session_id)}"' in physician.get(f"/sessions/{session_id}").get_data(as_text=True)
    first = physician.get(pdf_url(session_id))
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    second = login_as("coordinator").get(pdf_url(session_id))
    assert second.status_code == 200 and second.data == first.data
    assert stored_count(app) == 1
    with app.app_context():
        document = db.session.scalar(select(ReportDocument))
        assert document.sha256 == hashlib.sha256(first.data).hexdigest() and document.content == first.data
        assert document.session_id == session_id and len(document.document_id) == 20
    downloads = audit_rows(app, "report.downloaded")
    assert [row.object_id for row in downloads] == [document.document_id] * 2
    assert [json.loads(row.details)["generated"] for row in downloads] == [True, False]
    with app.app_context():  # two first downloads at once: the one stored first wins, the other's bytes are dropped
        rival = ReportDocument(document_id="RIVAL", kind="session", patient_id=document.patient_id,
                               session_id=session_id, sha256="0" * 64, content=b"rival", created_at=clock())
        assert service.keep_document(rival, actor=SYSTEM, now=clock()).document_id == document.document_id
        db.session.rollback()
    if backend == "sqlite":  # the PDF's content: once is enough
        qpdf_check(first.data, tmp_path)
        text = pdf_text(first.data, tmp_path)
        assert "Casey Chairtest" in text and document.document_id in text
        with app.app_context():
            patient = db.session.get(Patient, document.patient_id)
            mrn, born = patient.mrn, patient.date_of_birth.strftime("%d %b %Y")
        assert f"MRN {mrn}" in text and f"born {born}" in text
        assert "185/112 mmHg" in text and "128/80 mmHg" in text
        assert "Electronically signed by" in text and "Page 1 of" in text and "Confidential" in text
        assert "DRAFT" not in text
    with app.app_context():
        db.session.execute(update(ReportDocument).values(content=first.data[:-10] + b"tampered!!"))
        db.session.commit()
    refused = physician.get(pdf_url(session_id))
    assert refused.status_code == 409 and b"no longer match" in refused.data
    [failed] = audit_rows(app, "report.integrity_failed")
    assert failed.object_id == document.document_id and failed.outcome == "denied"
    admin = login_as("admin")  # shown to admins until the stored bytes are restored
    assert document.document_id in admin.get("/admin/staff").get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(ReportDocument).values(content=first.data))
        db.session.commit()
    assert 'data-testid="refused-documents"' not in admin.get("/admin/staff").get_data(as_text=True)


# --- the DRAFT preview ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_unsigned_preview_is_a_draft_on_every_page_prints_payloads_as_text_and_is_never_stored(
        app, discharged_session, tmp_path, login_as, caplog):
    session_id, nurse = discharged_session
    assert "summary.pdf" not in nurse.get(f"/sessions/{session_id}").get_data(as_text=True)  # no note yet
    payloads = " ".join(payload for payload in PAYLOADS if payload.isascii())[:9_000]  # DejaVu: no CJK
    quotes = "אני בסדר — Всё хорошо — أنا بخير"
    assert save(nurse, session_id, narrative=payloads, themes=LONG_WORD, quotes=quotes).status_code == 302
    response = nurse.get(pdf_url(session_id))
    assert response.status_code == 200, response.data[:300]
    assert not [record for record in caplog.records if "notdef" in record.getMessage()], "a glyph had no font"
    content = response.data
    qpdf_check(content, tmp_path)
    pages = page_count(content, tmp_path)
    assert pages >= 2
    for page in range(1, pages + 1):
        text = pdf_text(content, tmp_path, page)
        assert "DRAFT" in text and f"Page {page} of {pages}" in text and "Casey Chairtest" in text
    whole = body_text(content, tmp_path, running=("Casey Chairtest ·", "Infusion clinic ·"))
    assert squeezed(payloads) in whole and LONG_WORD in whole and "Всёхорошо" in whole
    assert stored_count(app) == 0
    assert [row.object_id for row in audit_rows(app, "report.previewed")] == [str(session_id)]

    coordinator = login_as("coordinator")
    assert coordinator.get(pdf_url(session_id)).status_code == 403
    denied = audit_rows(app, "access.denied")
    assert denied and json.loads(denied[-1].details)["endpoint"] == "reports.session_pdf"
    assert nurse.get(pdf_url(999_999)).status_code == 404
    [missing] = audit_rows(app, "report.not_found")
    assert missing.object_id == "999999" and missing.outcome == "denied"
