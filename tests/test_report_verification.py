"""The verification page: a signed session summary checked by its document ID and by upload (in memory,
never stored), a one-byte change and a tampered stored row caught, bad uploads given clear messages,
a PDF signed with another clinic's key or with no stored record told apart, and every check audited without
patient data. One PDF render per backend, and one small one."""
import io
import json
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from opsmgr.audit.models import AuditEvent
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.render import html_to_pdf
from opsmgr.reports.signing import sign_pdf
from tests.test_notes import chairs, completed, discharged, save, signed  # noqa: F401 - fixtures used below

VERIFY = "/reports/verify"
UPLOAD = "/reports/verify/upload"


def by_id(client, document_id):
    return client.get(VERIFY, query_string={"document_id": document_id}).get_data(as_text=True)


def upload(client, content, name="summary.pdf"):
    return client.submit(UPLOAD, {"pdf": (io.BytesIO(content), name)})


def verifications(app):
    with app.app_context():
        return [(row.object_id, row.outcome, json.loads(row.details)) for row in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "report.verified").order_by(AuditEvent.id))]


@pytest.fixture
def signed_session(request):
    """(session id, nurse, physician): a session walked to discharge, its note signed (tests/test_notes.py)."""
    return request.getfixturevalue("signed")


def test_a_signed_summary_verifies_by_id_and_upload_and_changes_are_caught(app, signed_session, login_as):
    session_id, _nurse, physician = signed_session
    content = physician.get(f"/sessions/{session_id}/summary.pdf").data
    with app.app_context():
        document = db.session.scalar(select(ReportDocument))
        document_id = document.document_id
        patient = db.session.get(Patient, document.patient_id)
        name, mrn = patient.legal_name, patient.mrn
    coordinator = login_as("coordinator")
    page = by_id(coordinator, document_id.lower())
    assert "Intact" in page and 'data-outcome="intact"' in page and "Session summary" in page
    assert f"{name} (MRN {mrn})" in page and "Signed by" in page
    same = upload(coordinator, content)
    assert same.status_code == 200 and 'data-outcome="intact"' in same.get_data(as_text=True)
    changed = bytearray(content)
    changed[3000] ^= 0x01
    caught = upload(coordinator, bytes(changed)).get_data(as_text=True)
    assert "changed after it was signed" in caught and "Not intact" in caught and name not in caught
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportDocument)) == 1  # uploads never stored
        db.session.execute(update(ReportDocument).values(content=content[:-10] + b"tampered!!"))
        db.session.commit()
    tampered = by_id(physician, document_id)
    assert "Not intact" in tampered and 'data-outcome="tampered"' in tampered
    assert verifications(app) == [
        (document_id, "ok", {"way": "id", "result": "intact"}),
        (document_id, "ok", {"way": "upload", "result": "intact"}),
        (document_id, "denied", {"way": "upload", "result": "changed"}),
        (document_id, "denied", {"way": "id", "result": "tampered"}),
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bad_uploads_and_unknown_ids_get_clear_messages(app, login_as):
    nurse = login_as("nurse")
    assert "Verify a report" in nurse.get(VERIFY).get_data(as_text=True)
    assert "No document with this ID" in by_id(nurse, "NOPE42")
    assert "No document with this ID" in by_id(nurse, "<script>")
    not_pdf = upload(nurse, b"hello, not a pdf", "note.txt")
    assert not_pdf.status_code == 200 and "This file is not a PDF." in not_pdf.get_data(as_text=True)
    broken = upload(nurse, b"%PDF-1.7\n garbage")
    assert "This file is not a PDF." in broken.get_data(as_text=True)
    empty = nurse.submit(UPLOAD, {})
    assert empty.status_code == 400 and "Choose a PDF file" in empty.get_data(as_text=True)
    app.config["MAX_CONTENT_LENGTH"] = 4096  # the 2 MB cap, scaled down: the test client spools big bodies to files
    big = upload(nurse, b"%PDF-" + b"0" * 5000)
    assert big.status_code == 413 and "larger than the clinic&#39;s upload limit" in big.get_data(as_text=True)
    assert [(object_id, outcome, details["result"]) for object_id, outcome, details in verifications(app)] == [
        (None, "denied", "not_found"), (None, "denied", "not_found"),
        (None, "denied", "not_pdf"), (None, "denied", "not_pdf"),
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_demo_clinic_has_a_signed_session_whose_summary_verifies(app, runner, login_as):
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        note = db.session.scalar(select(SessionNote).where(SessionNote.signed_at.is_not(None))
                                 .order_by(SessionNote.id).limit(1))  # DEMO-0004's, signed first
        session_id, signer = note.session_id, note.signer_name
    physician = login_as("physician")
    assert 'data-testid="verify-link"' in physician.get(f"/sessions/{session_id}").get_data(as_text=True)
    download = physician.get(f"/sessions/{session_id}/summary.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    checked = upload(physician, download.data).get_data(as_text=True)
    assert 'data-outcome="intact"' in checked and signer in checked and "DEMO-0004" in checked


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_pdf_signed_elsewhere_or_without_a_stored_record_says_so(app, login_as, tmp_path):
    other_clinic = Flask(__name__, instance_path=str(tmp_path / "other-instance"))  # its own self-signed key
    other_clinic.config.update(CLINIC_NAME="Another clinic")
    unsigned = html_to_pdf("<p style='font-family: DejaVu Sans'>Series summary</p>", app.static_folder)

    def signed_by(clinic, document_id):
        return sign_pdf(unsigned, signer_name="Amira Haddad", signer_credentials="MD",
                        signed_at=datetime(2026, 11, 26, 20, 5, tzinfo=UTC), zone="America/New_York",
                        document_id=document_id, reason="Series summary approved", app=clinic)

    nurse = login_as("nurse")
    foreign = upload(nurse, signed_by(other_clinic, "OTHER1")).get_data(as_text=True)
    assert 'data-outcome="not_ours"' in foreign and "Not verified" in foreign and "Not intact" not in foreign
    assert "not signed by this clinic" in foreign and "cannot be trusted" in foreign
    assert "Signer named in the file (not confirmed)" in foreign and "Signed by" not in foreign
    ours = upload(nurse, signed_by(app, "OURS42")).get_data(as_text=True)
    assert 'data-outcome="no_record"' in ours and "Not verified" in ours
    assert "signed with this clinic&#39;s key" in ours and "no stored document that matches it" in ours
    assert "Signed by" in ours and "Amira Haddad, MD" in ours and "OURS42" in ours
    assert verifications(app) == [("OTHER1", "denied", {"way": "upload", "result": "not_ours"}),
                                  ("OURS42", "denied", {"way": "upload", "result": "no_record"})]
