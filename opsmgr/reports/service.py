"""Report use cases: preview a session summary, produce a signed one once, hand out the stored bytes.

A signed session's summary is rendered from load_record() the first time it is asked for, carries a
PAdES signature in the note signer's name (reports.signing, when installed) and is stored with its
SHA-256; every later download sends those bytes. An unsigned session gets a DRAFT preview that is
never stored. Every preview, download and refusal is audited with ids only.
"""
import hashlib
import importlib.util
import logging
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.policy.service import current_policy, policy_for
from opsmgr.reports import data
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.render import render_pdf
from opsmgr.rules.findings import Problem

log = logging.getLogger(__name__)

SESSION_TITLE = "Session summary"
TAMPERED = ("This document's stored bytes no longer match the SHA-256 recorded when it was made, so it is not "
            "sent. The clinic's administrators can see this refusal in the audit log.")


class DocumentTampered(DomainError):
    """Stored bytes that no longer match their hash: refused, never sent."""

    def __init__(self):
        super().__init__([Problem(None, TAMPERED)], audited=True)


@dataclass
class Download:
    """The bytes to send: a stored document, or one just made (``is_new``) and not stored yet."""

    document: ReportDocument
    is_new: bool

    @property
    def content(self):
        return self.document.content


def sha256_hex(content):
    return hashlib.sha256(content).hexdigest()


def new_document_id():
    """The public id printed on a document: 20 random hex characters, upper case."""
    return secrets.token_hex(10).upper()


def is_signed(rec):
    return rec.note is not None and rec.note.signed_at is not None


def session_summary_pdf(rec, *, document_id=None, draft=False):
    """Render a session summary (SessionRecord) to PDF/A-3b bytes; signed with PAdES when not a draft
    and the signing module is installed."""
    summary = data.session_summary(rec, zone=clinic_zone())
    assets, chart = _chart(rec, summary)
    content = render_pdf("reports/session.html", assets=assets, summary=summary, patient=summary["patient"],
                         title=SESSION_TITLE, document_id=document_id, draft=draft, chart=chart,
                         clinic_name=current_app.config["CLINIC_NAME"])
    if draft:
        return content
    return _sign(content, summary["signature"], document_id)


def preview_session_summary(rec, *, actor, now):
    """A DRAFT preview of an unsigned session's summary (bytes; never stored)."""
    visit = rec.infusion_session
    content = session_summary_pdf(rec, draft=True)
    record("report.previewed", actor=actor, now=now, object_type="infusion_session", object_id=visit.id,
           patient_id=visit.patient_id, details={"kind": "session"})
    return content


def stored_session_document(session_id):
    return db.session.scalar(select(ReportDocument).where(ReportDocument.kind == "session",
                                                          ReportDocument.session_id == session_id))


def signed_session_summary(rec, *, actor, now):
    """The signed session's summary as a Download: the stored document (its hash checked), or — the
    first time — one made now, to be kept with keep_document() in the request's write phase."""
    visit = rec.infusion_session
    stored = stored_session_document(visit.id)
    if stored is not None:
        check_integrity(stored, actor=actor, now=now)
        audit_download(stored, actor=actor, now=now, generated=False)
        return Download(stored, is_new=False)
    document_id = new_document_id()
    content = session_summary_pdf(rec, document_id=document_id)
    document = ReportDocument(document_id=document_id, kind="session", patient_id=visit.patient_id,
                              session_id=visit.id, series_id=visit.series_id, sha256=sha256_hex(content),
                              content=content, created_at=now, created_by_id=actor.user_id)
    return Download(document, is_new=True)


def keep_document(document, *, actor, now):
    """Store a document made for its first download and audit the download; returns the stored row.
    If another request stored this session's summary first, that one wins and is returned."""
    try:
        with db.session.begin_nested():
            db.session.add(document)
    except IntegrityError:
        document = stored_session_document(document.session_id)
    audit_download(document, actor=actor, now=now, generated=True)
    return document


def check_integrity(document, *, actor, now):
    if sha256_hex(document.content) != document.sha256:
        log.error("report document %s: stored bytes do not match their SHA-256; download refused", document.id)
        record("report.integrity_failed", actor=actor, now=now, outcome="denied", object_type="report_document",
               object_id=document.document_id, patient_id=document.patient_id,
               details={"kind": document.kind, "session_id": document.session_id})
        raise DocumentTampered()


def integrity_failures(limit=20):
    """The document IDs refused because their stored bytes no longer match their SHA-256 (found by a
    download or a verification, from the audit trail) and still not restored, newest first: shown to
    admins until the stored bytes match again."""
    from opsmgr.audit.models import AuditEvent

    refused = list(db.session.scalars(
        select(AuditEvent.object_id).where(AuditEvent.action == "report.integrity_failed")
        .group_by(AuditEvent.object_id).order_by(func.max(AuditEvent.id).desc()).limit(limit)))
    if not refused:
        return []
    stored = {document.document_id: document for document in db.session.scalars(
        select(ReportDocument).where(ReportDocument.document_id.in_(refused)))}
    return [document_id for document_id in refused
            if document_id in stored and sha256_hex(stored[document_id].content) != stored[document_id].sha256]


def audit_download(document, *, actor, now, generated):
    record("report.downloaded", actor=actor, now=now, object_type="report_document", object_id=document.document_id,
           patient_id=document.patient_id,
           details={"kind": document.kind, "session_id": document.session_id, "generated": generated})


def audit_missing(session_id, *, actor, now):
    record("report.not_found", actor=actor, now=now, outcome="denied", object_type="infusion_session",
           object_id=session_id, details={"kind": "session"})


def _thresholds(rec):
    """The in-chair alert thresholds (rule 12) of the newest policy version this session was decided under."""
    versions = rec.policy_versions
    policy = (policy_for(versions[-1]) if versions else None) or current_policy()[1]
    return {"alert_systolic": policy.alert_systolic, "alert_diastolic": policy.alert_diastolic,
            "alert_spo2_below": policy.alert_spo2_below}


def _chart(rec, summary):
    """({asset name: (svg bytes, mime)}, its URL) for the vitals chart, or ({}, None) without readings or
    without the chart module."""
    if not summary["chart_points"] or importlib.util.find_spec("opsmgr.reports.charts") is None:
        return {}, None
    from opsmgr.reports.charts import vitals_chart

    svg = vitals_chart(summary["chart_points"], thresholds=_thresholds(rec), title="Vital signs")
    return {"vitals.svg": (svg.encode("utf-8"), "image/svg+xml")}, "opsmgr-asset:vitals.svg"


def _sign(content, signature, document_id):
    """PAdES-sign in the note signer's name (reports.signing); unchanged while that module is absent."""
    if importlib.util.find_spec("opsmgr.reports.signing") is None:
        return content
    from opsmgr.reports.signing import sign_pdf

    return sign_pdf(content, signer_name=signature["name"], signer_credentials=signature["credentials"],
                    signed_at=signature["signed_at_utc"], zone=clinic_zone(), document_id=document_id,
                    reason="Session note signed", app=current_app._get_current_object())
