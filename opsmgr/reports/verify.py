"""Verify a report: by its document ID against the stored row, or an uploaded PDF in memory.

An upload is never stored: its PDF signature is checked with signing.verify_pdf and its SHA-256 is
looked up among the stored documents. Every verification is audited with the document ID and the
outcome only (no patient data, no file name).
"""
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.reports import signing
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.service import sha256_hex

NOT_FOUND = "No document with this ID is stored by this clinic."
NOT_PDF = "This file is not a PDF."
NO_SIGNATURE = "This PDF carries no signature."
CHANGED = "This PDF was changed after it was signed."
NOT_OURS = ("This PDF was not signed by this clinic: its signature was made with another key, so the signer and "
            "document ID written in it cannot be trusted.")
NO_RECORD = ("This PDF was signed with this clinic's key and is unchanged since, but the clinic has no stored "
             "document that matches it, so it is not part of the clinic's record. Ask an administrator.")
EXTRA = "Content was added to this PDF after it was signed."


@dataclass
class Outcome:
    """What the page shows; `patient` is None unless the viewer may see the patient."""

    outcome: str
    intact: bool
    message: str
    document_id: str | None = None
    kind: str | None = None
    patient: Patient | None = None
    signer: str | None = None
    signed_at: object = None
    problems: tuple = field(default_factory=tuple)
    #: The signer and document ID are only what the file says (its signature does not hold).
    unconfirmed: bool = False

    @property
    def heading(self):
        if self.intact:
            return "Intact"
        return "Not intact" if self.outcome in ("changed", "tampered") else "Not verified"


def verify_document_id(document_id, *, actor, now, may_see_patient):
    """Look up a stored document and check its bytes against the SHA-256 recorded when it was made."""
    document_id = (document_id or "").strip().upper()
    document = db.session.scalar(select(ReportDocument).where(ReportDocument.document_id == document_id)) \
        if signing.DOCUMENT_ID.match(document_id) else None
    if document is None:
        return _audited(Outcome("not_found", False, NOT_FOUND), "id", actor, now)
    intact = sha256_hex(document.content) == document.sha256
    message = ("Intact: the stored document matches the SHA-256 recorded when it was signed." if intact else
               "Not intact: the stored bytes no longer match the SHA-256 recorded when it was signed.")
    found = _from_record(document, intact, message, "intact" if intact else "tampered", may_see_patient)
    return _audited(found, "id", actor, now)


def verify_upload(content, *, actor, now, may_see_patient):
    """Check uploaded bytes in memory: the PDF signature, then which stored document they are."""
    if not content.startswith(b"%PDF-"):
        return _audited(Outcome("not_pdf", False, NOT_PDF), "upload", actor, now)
    checked = signing.verify_pdf(content, app=current_app._get_current_object())
    # Any file may name any "document ID": only one shaped like ours is shown and audited.
    claimed_id = checked.document_id if signing.DOCUMENT_ID.match(checked.document_id or "") else None
    bad = _signature_problem(checked)
    if bad is not None:
        return _audited(Outcome(bad[0], False, bad[1], document_id=claimed_id, signer=checked.signer,
                                problems=checked.problems, unconfirmed=True), "upload", actor, now)
    document = db.session.scalar(select(ReportDocument).where(ReportDocument.sha256 == sha256_hex(content)))
    if document is None:
        return _audited(Outcome("no_record", False, NO_RECORD, document_id=claimed_id,
                                signer=checked.signer), "upload", actor, now)
    found = _from_record(document, True, "Intact: this file is the clinic's stored, signed document, byte for byte.",
                         "intact", may_see_patient)
    return _audited(found, "upload", actor, now)


def _signature_problem(checked):
    """(outcome, message) for a PDF whose signature does not hold, or None."""
    if checked.intact:
        return None
    problems = " ".join(checked.problems)
    if "not a readable PDF" in problems:
        return "not_pdf", NOT_PDF
    if "no signature" in problems:
        return "no_signature", NO_SIGNATURE
    if "changed after" in problems or "damaged" in problems:
        return "changed", CHANGED
    if "added to the file" in problems or "more than one" in problems:
        return "changed", EXTRA
    return "not_ours", NOT_OURS


def _from_record(document, intact, message, outcome, may_see_patient):
    """Who signed and when come from the stored record (the session note's signature, or the series
    summary's signer and signing time), not the file."""
    note = db.session.scalar(select(SessionNote).where(SessionNote.session_id == document.session_id)) \
        if document.session_id is not None else None
    signer = document.signer  # a series summary's signer; a session summary's is its note's
    if note is not None and note.signed_at is not None:
        signer = f"{note.signer_name}, {note.signer_credentials}" if note.signer_credentials else note.signer_name
    patient = db.session.get(Patient, document.patient_id)
    return Outcome(outcome, intact, message, document_id=document.document_id, kind=document.kind,
                   patient=patient if may_see_patient(patient) else None, signer=signer,
                   signed_at=note.signed_at if note is not None and note.signed_at else document.created_at)


def _audited(found, way, actor, now):
    record("report.verified", actor=actor, now=now, outcome="ok" if found.intact else "denied",
           object_type="report_document", object_id=found.document_id,
           details={"way": way, "result": found.outcome})
    return found
