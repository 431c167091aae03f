"""PDF downloads: the session summary (signed and stored once, or an unsigned DRAFT preview).

A GET: the first download of a signed session's summary renders and signs it in the read phase and
stores it with reads.write(), in the request's write phase, before the response leaves. If another
request stored one first, this response is switched to the stored bytes, so every download of a
document is the same bytes.
"""
import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from opsmgr.audit.service import record
from opsmgr.core import reads
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.submissions import exempt as submission_exempt
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import (
    can_download_reports,
    can_preview_reports,
    can_sign_note,
    can_verify_reports,
    can_view_patients,
)
from opsmgr.reports import series as series_reports
from opsmgr.reports import service, verify
from opsmgr.reports.forms import SeriesSignForm
from opsmgr.reports.render import ReportError
from opsmgr.rules.findings import Problem
from opsmgr.series.models import InfusionSeries
from opsmgr.sessions.record import load_record

bp = Blueprint("reports", __name__)
log = logging.getLogger(__name__)

FAILED = ("The PDF could not be produced, and nothing was stored. The error was logged for the clinic's "
          "administrator (a report template or font is missing or broken).")


@bp.get("/sessions/<int:session_id>/summary.pdf", endpoint="session_pdf")
@requires(can_download_reports)
def session_pdf(session_id):
    """The session summary: the signed, stored PDF, or (clinicians only) a DRAFT preview."""
    actor, now = current_actor(), utcnow()
    rec = load_record(session_id)
    if rec is None:
        service.audit_missing(session_id, actor=actor, now=now)
        abort(404)
    try:
        if not service.is_signed(rec):
            if not can_preview_reports(current_user, rec.infusion_session.patient):
                abort(403)
            content = service.preview_session_summary(rec, actor=actor, now=now)
            return _pdf(content, f"session-{session_id}-summary-DRAFT.pdf")
        download = service.signed_session_summary(rec, actor=actor, now=now)
    except service.DocumentTampered as error:
        return render_template("errors/error.html", code=409, title="Document refused", text=str(error)), 409
    except ReportError as error:
        log.error("session summary %s: %s", session_id, error)
        return render_template("errors/error.html", code=500, title="PDF not produced", text=FAILED), 500
    response = _pdf(download.content, f"session-{session_id}-summary-{download.document.document_id}.pdf")
    if download.is_new:
        reads.write(lambda: _keep(download.document, response, actor, now))
    return response


@bp.get("/reports/verify", endpoint="verify")
@requires(can_verify_reports)
def verify_page():
    """The verification form; with ?document_id= it checks that stored document (a read, audited)."""
    document_id = request.args.get("document_id", "").strip()
    found = None
    if document_id:
        found = verify.verify_document_id(document_id, actor=current_actor(), now=utcnow(),
                                          may_see_patient=_may_see)
    return render_template("reports/verify.html", found=found, document_id=document_id, problem=None)


@bp.post("/reports/verify/upload", endpoint="verify_upload")
@requires(can_verify_reports)
def verify_upload():
    """An uploaded PDF, checked in memory and never stored; read-only apart from its audit row."""
    try:
        upload = request.files.get("pdf")
    except RequestEntityTooLarge:
        return _verify_problem(TOO_LARGE, 413)
    content = upload.read() if upload else b""
    if not content:
        return _verify_problem("Choose a PDF file to check.", 400)
    found = verify.verify_upload(content, actor=current_actor(), now=utcnow(), may_see_patient=_may_see)
    db.session.commit()
    return render_template("reports/verify.html", found=found, document_id="", problem=None)


TOO_LARGE = "The file is larger than the clinic's upload limit of 2 MB, so it was not checked."


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error):
    """An oversize upload (refused while the CSRF check reads the form) gets the form back with a clear
    message. Only the verification page of this blueprint accepts uploads."""
    return _verify_problem(TOO_LARGE, 413)


def _verify_problem(message, status):
    return render_template("reports/verify.html", found=None, document_id="", problem=message), status


def _may_see(patient):
    return can_view_patients(current_user)


def _keep(document, response, actor, now):
    """Write phase: store the first generation; a concurrent first generation that won is sent instead."""
    kept = service.keep_document(document, actor=actor, now=now)
    if kept is not document:
        response.set_data(kept.content)
        response.headers["Content-Disposition"] = _disposition(
            f"session-{kept.session_id}-summary-{kept.document_id}.pdf")


def _pdf(content, filename):
    response = Response(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = _disposition(filename)
    return response


def _disposition(filename):
    return f'inline; filename="{filename}"'


@bp.get("/reports/documents/<document_id>.pdf", endpoint="document_pdf")
@requires(can_download_reports)
def document_pdf(document_id):
    """A stored, signed report (a session or a series summary) by its document ID: the very bytes stored."""
    actor, now = current_actor(), utcnow()
    document = series_reports.stored_document(document_id)
    if document is None:
        record("report.not_found", actor=actor, now=now, outcome="denied", object_type="report_document",
               object_id=document_id[:32], details={"kind": "document"})
        abort(404)
    try:
        service.check_integrity(document, actor=actor, now=now)
    except service.DocumentTampered as error:
        return render_template("errors/error.html", code=409, title="Document refused", text=str(error)), 409
    service.audit_download(document, actor=actor, now=now, generated=False)
    return _pdf(document.content, f"{document.kind}-summary-{document.document_id}.pdf")


@bp.post("/series/<int:series_id>/summary/preview", endpoint="series_preview")
@requires(can_preview_reports)
@submission_exempt
def series_preview(series_id):
    """A DRAFT of the series summary with the paragraph typed so far (never stored; only audited)."""
    series = db.get_or_404(InfusionSeries, series_id)
    form = SeriesSignForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        content = series_reports.preview_series_summary(series, summary_text=form.summary.data or "",
                                                        actor=current_actor(), now=utcnow())
    except ReportError as error:
        log.error("series summary %s: %s", series_id, error)
        return render_template("errors/error.html", code=500, title="PDF not produced", text=FAILED), 500
    db.session.commit()
    return _pdf(content, f"series-{series_id}-summary-DRAFT.pdf")


@bp.post("/series/<int:series_id>/summary/sign", endpoint="series_sign")
@requires(can_sign_note)
def series_sign(series_id):
    """The physician signs the series summary with their password; the signed PDF is stored once."""
    series = db.get_or_404(InfusionSeries, series_id)
    form = SeriesSignForm()
    if not form.validate_on_submit():
        return _series_page(series, form, 400)

    def done(document):
        flash(f"Series summary signed and stored as document {document.document_id}.", "success")
        return redirect(url_for("series.detail", series_id=series.id, _anchor="summaries"))

    def refused(error):
        show_at_fields(form, error)
        return _series_page(series, form, 400)

    def make():
        try:
            return series_reports.sign_series_summary(
                series, physician=current_user._get_current_object(), password=form.password.data,
                totp_code=form.totp_code.data, summary_text=form.summary.data or "", actor=current_actor(),
                ip=request.remote_addr, now=utcnow())
        except ReportError as error:
            log.error("series summary %s: %s", series_id, error)
            raise series_reports.SeriesSummaryRefused([Problem(None, FAILED)]) from None

    return attempt(make, done=done, refused=refused)


def _series_page(series, form, status):
    from opsmgr.series.views import render_detail

    form.password.data = form.totp_code.data = ""
    return render_detail(series, sign_form=form), status
