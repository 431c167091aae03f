"""Bulk export of signed PDFs to a folder, with a manifest; safe to interrupt and run again.

In scope: the summaries of signed sessions (the note signed on or after a clinic date, or the
sessions of one series) and the stored series summaries (made on or after that date, or of that
series). A signed session whose summary was never asked for gets it made and stored now, as its
first download would. Files go to ``DIR/<MRN>/<kind>-<clinic date>-<document ID>.pdf`` one at a
time (ids first, then each document's bytes), each written to a temporary file in its folder,
fsynced and renamed into place after its audit row is committed: an interruption leaves whole
files and at worst one extra audit row, never an unaudited file. A run skips files whose SHA-256
matches the stored hash and rewrites those that do not; ``manifest.csv`` lists every PDF in DIR
that matches its record, so a resumed run's manifest covers the interrupted run's files as well.
"""
import io
import logging
import os
import re
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import defer

from opsmgr.audit.service import record
from opsmgr.core import csvfiles
from opsmgr.core.clock import clinic_zone
from opsmgr.core.files import file_sha256
from opsmgr.extensions import db
from opsmgr.notes.models import SessionNote
from opsmgr.patients.models import Patient
from opsmgr.reports import service
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.render import ReportError
from opsmgr.sessions.models import InfusionSession
from opsmgr.sessions.record import load_record

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("document_id", "kind", "mrn", "patient_name", "session_id", "series_id", "signed_at", "sha256",
                   "file")
PART = ".opsmgr-part"
FILE_NAME = re.compile(r"^(session|series)-\d{4}-\d{2}-\d{2}-([0-9A-Za-z]+)\.pdf$")
CHUNK = 1 << 20
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class Scope:
    """What to export: documents signed on or after ``since`` (a clinic date), of ``series_id``, or both."""

    since: date | None = None
    series_id: int | None = None

    def since_utc(self):
        if self.since is None:
            return None
        return datetime.combine(self.since, time(), tzinfo=clinic_zone()).astimezone(UTC)

    def details(self):
        return {"since": self.since.isoformat() if self.since else None, "series_id": self.series_id}


@dataclass
class Result:
    written: list = field(default_factory=list)
    present: list = field(default_factory=list)
    rewritten: list = field(default_factory=list)
    #: Document IDs whose stored bytes no longer match their SHA-256 (audited, not written).
    refused: list = field(default_factory=list)
    #: Session ids whose summary could not be made (logged for the admin, nothing stored).
    failed: list = field(default_factory=list)
    generated: int = 0
    rows: dict = field(default_factory=dict)

    @property
    def ok(self):
        return not self.refused and not self.failed

    def counts(self):
        return {"written": len(self.written), "present": len(self.present), "rewritten": len(self.rewritten),
                "refused": len(self.refused), "failed": len(self.failed), "generated": self.generated}


# --- what is in scope ------------------------------------------------------------------------------

def unsummarised_sessions(scope):
    """Ids of signed sessions in scope that have no stored summary yet."""
    stmt = (select(InfusionSession.id).join(SessionNote, SessionNote.session_id == InfusionSession.id)
            .outerjoin(ReportDocument, and_(ReportDocument.kind == "session",
                                            ReportDocument.session_id == InfusionSession.id))
            .where(SessionNote.signed_at.is_not(None), ReportDocument.id.is_(None)).order_by(InfusionSession.id))
    if scope.since is not None:
        stmt = stmt.where(SessionNote.signed_at >= scope.since_utc())
    if scope.series_id is not None:
        stmt = stmt.where(InfusionSession.series_id == scope.series_id)
    return list(db.session.scalars(stmt))


def stored_documents(scope):
    """Row ids of the stored documents in scope (session summaries by their note's signing time,
    series summaries by when they were made and signed)."""
    sessions = [ReportDocument.kind == "session", SessionNote.signed_at.is_not(None)]
    series = [ReportDocument.kind == "series", ReportDocument.session_id.is_(None),
              ReportDocument.series_id.is_not(None)]
    if scope.since is not None:
        sessions.append(SessionNote.signed_at >= scope.since_utc())
        series.append(ReportDocument.created_at >= scope.since_utc())
    if scope.series_id is not None:
        sessions.append(ReportDocument.series_id == scope.series_id)
        series.append(ReportDocument.series_id == scope.series_id)
    return list(db.session.scalars(
        select(ReportDocument.id).outerjoin(SessionNote, SessionNote.session_id == ReportDocument.session_id)
        .where(or_(and_(*sessions), and_(*series))).order_by(ReportDocument.id)))


def _described(stmt):
    """(document, mrn, name, signed_at) rows: the signing time is the note's for a session summary,
    the document's own for a series summary (it is made when signed)."""
    return db.session.execute(
        stmt.add_columns(Patient.mrn, Patient.legal_name, SessionNote.signed_at)
        .join(Patient, Patient.id == ReportDocument.patient_id)
        .outerjoin(SessionNote, SessionNote.session_id == ReportDocument.session_id))


# --- files -------------------------------------------------------------------------------------------

def safe_part(text):
    """A path component from a stored value: letters, digits, dot, dash and underscore; no leading dot."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(text)).lstrip(".") or "_"


def relative_path(document, mrn, signed_at):
    day = signed_at.astimezone(clinic_zone()).date().isoformat()
    return Path(safe_part(mrn)) / f"{document.kind}-{day}-{safe_part(document.document_id)}.pdf"


def make_dir(path):
    """A folder only the owner can open (0o700) for the folders this export creates."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomically(path, content, before_replace=None):
    """Write ``content`` to a temporary file (0o600) beside ``path``, fsync, call ``before_replace()``,
    then rename it into place and fsync the folder. A failure leaves no temporary file behind."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PART)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        if before_replace is not None:
            before_replace()
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(out):
    """Temporary files an interrupted run left behind; returns how many were removed."""
    leftovers = [*out.glob(f".*{PART}"), *out.glob(f"*/.*{PART}")]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


# --- the manifest ------------------------------------------------------------------------------------

def manifest_row(document, mrn, name, signed_at, path):
    return {"document_id": document.document_id, "kind": document.kind, "mrn": mrn, "patient_name": name,
            "session_id": document.session_id, "series_id": document.series_id,
            "signed_at": signed_at.astimezone(clinic_zone()).isoformat(timespec="seconds"),
            "sha256": document.sha256, "file": path.as_posix()}


def write_manifest(out, rows):
    buffer = io.StringIO(newline="")
    ordered = sorted(rows, key=lambda row: (row["file"], row["document_id"]))
    csvfiles.write_rows(buffer, MANIFEST_FIELDS, ([row[name] for name in MANIFEST_FIELDS] for row in ordered))
    write_atomically(out / MANIFEST, buffer.getvalue().encode("utf-8"))


def rows_on_disk(out, known, skip):
    """Manifest rows for PDFs in ``out`` this run did not handle (an earlier run, another scope) whose
    file still matches its stored record; returns (rows, how many files did not match)."""
    found = {}
    for path in out.glob("*/*.pdf"):
        match = FILE_NAME.match(path.name)
        if match and match.group(2) not in known and match.group(2) not in skip:
            found[match.group(2)] = path
    rows, unmatched, ids = [], 0, sorted(found)
    for start in range(0, len(ids), LOOKUP_BATCH):
        batch = ids[start:start + LOOKUP_BATCH]
        stmt = select(ReportDocument).where(ReportDocument.document_id.in_(batch)).options(
            defer(ReportDocument.content))
        for document, mrn, name, signed_at in _described(stmt):
            path = found[document.document_id]
            expected = relative_path(document, mrn, signed_at or document.created_at)
            if path.relative_to(out) == expected and file_sha256(path) == document.sha256:
                rows.append(manifest_row(document, mrn, name, signed_at or document.created_at, expected))
            else:
                unmatched += 1
        db.session.expunge_all()
    return rows, unmatched


# --- the export --------------------------------------------------------------------------------------

def plan(scope):
    """[(kind of step, id)]: the signed sessions whose summary is to be made first, then the stored documents."""
    return ([("generate", session_id) for session_id in unsummarised_sessions(scope)]
            + [("export", row_id) for row_id in stored_documents(scope)])


def run_step(step, out, result, *, actor, clock):
    """One step of plan(): make a missing summary (committed), then export one document (committed)."""
    kind, key = step
    if kind == "generate":
        key = generate(key, result, actor=actor, now=clock())
        if key is None:
            return
    export_document(key, out, result, actor=actor, now=clock())


def generate(session_id, result, *, actor, now):
    """Make and store the summary of a signed session never downloaded; its row id, or None."""
    rec = load_record(session_id)
    if rec is None or not service.is_signed(rec):
        return None
    try:
        download = service.signed_session_summary(rec, actor=actor, now=now)
    except service.DocumentTampered:  # stored meanwhile by a download, and its bytes do not match
        db.session.commit()  # keeps the refusal's audit row
        result.refused.append(service.stored_session_document(session_id).document_id)
        return None
    except ReportError as error:
        db.session.rollback()
        log.error("export: summary of session %s not produced: %s", session_id, error)
        result.failed.append(session_id)
        return None
    document = download.document
    if download.is_new:
        document = service.keep_document(document, actor=actor, now=now)
        result.generated += 1
    row_id = document.id
    db.session.commit()
    db.session.expunge_all()
    return row_id


def export_document(row_id, out, result, *, actor, now):
    """Write one stored document into ``out`` unless a matching file is there; refuse tampered bytes."""
    described = _described(select(ReportDocument).where(ReportDocument.id == row_id)).first()
    if described is None:
        return
    document, mrn, name, signed_at = described
    if document.document_id in result.rows or document.document_id in result.refused:
        return
    try:
        service.check_integrity(document, actor=actor, now=now)
    except service.DocumentTampered:
        db.session.commit()
        result.refused.append(document.document_id)
        db.session.expunge_all()
        return
    path = relative_path(document, mrn, signed_at or document.created_at)
    row = manifest_row(document, mrn, name, signed_at or document.created_at, path)
    target = out / path
    make_dir(target.parent)
    outcome = "written"
    if target.exists():
        outcome = "present" if file_sha256(target) == document.sha256 else "rewritten"
    if outcome != "present":
        audit = _export_audit(document, outcome, actor=actor, now=now)
        write_atomically(target, document.content, before_replace=audit)
    getattr(result, outcome).append(row["document_id"])
    result.rows[row["document_id"]] = row
    db.session.expunge_all()


def _export_audit(document, outcome, *, actor, now):
    """The disclosure's audit row, to be committed before the file is renamed into place."""
    fields = {"object_type": "report_document", "object_id": document.document_id, "patient_id": document.patient_id,
              "details": {"kind": document.kind, "session_id": document.session_id,
                          "series_id": document.series_id, "result": outcome}}

    def commit():
        record("report.exported", actor=actor, now=now, **fields)
        db.session.commit()

    return commit


def finish(out, scope, result, *, actor, now):
    """Write the manifest (this run's rows and every other matching PDF in ``out``) and the summary
    audit row; returns (documents listed, PDFs in ``out`` left out because they do not match their record)."""
    others, unmatched = rows_on_disk(out, set(result.rows), set(result.refused))
    rows = [*result.rows.values(), *others]
    write_manifest(out, rows)
    record("report.export", actor=actor, now=now, outcome="ok" if result.ok else "denied",
           details={**scope.details(), **result.counts(), "unlisted": unmatched})
    db.session.commit()
    return len(rows), unmatched
