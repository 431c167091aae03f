"""Backup and restore drill (reliability §8 row 22): back up the demo clinic, with a signed PDF, while the
app writes; restore into a fresh database; the restore proves counts, checksums, the audit chain and every
PDF's hash. Then the refusals: no key, a wrong key, an altered file, a non-empty target, another audit key."""
import hashlib
import itertools
import json
import shutil
import threading
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import TestConfig
from opsmgr import create_app
from opsmgr.audit.anchor import ANCHOR_FILE, anchor_path
from opsmgr.audit.models import AuditEvent
from opsmgr.audit.service import SYSTEM, anchor_head, record_event
from opsmgr.backup import bundle
from opsmgr.extensions import db
from opsmgr.reports.models import ReportDocument
from opsmgr.reports.signing import SELF_SIGNED_FILENAME, sign_pdf, verify_pdf
from tests.demo_copies import demo_clinic_copy

BACKUP_KEY = "a backup key the operator keeps apart"
_names = itertools.count(1)


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=[str(arg) for arg in args])
    return result.exit_code, result.output


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "backup.key"
    path.write_text(BACKUP_KEY + "\n")
    return path


@pytest.fixture
def new_database(backend, tmp_path, request):
    """make(template=False): the URL of a new database (empty, or migrated from the template)."""
    made = []

    def make(template=False):
        number = next(_names)
        if backend == "sqlite":
            path = tmp_path / f"db{number}.sqlite3"
            if template:
                shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        server = request.getfixturevalue("pg_server")
        name = f"backup_{next(_names)}_{number}"
        suffix = f" TEMPLATE {request.getfixturevalue('pg_template')}" if template else ""
        server.admin(f"CREATE DATABASE {name}{suffix}")
        made.append(name)
        return server.url(name)

    yield make
    for name in made:
        request.getfixturevalue("pg_server").admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def apps(clock, tmp_path):
    """build(url, instance name): an app on `url`; every one is disposed of at the end."""
    built = []

    def build(url, instance="instance", **overrides):
        app = create_app(TestConfig(url, tmp_path / instance, CLOCK=clock, **overrides))
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def demo_source(backend, apps, request, tmp_path):
    """The demo clinic on a committed database of the test's own (tests/demo_copies.py)."""
    return apps(demo_clinic_copy(backend, request, tmp_path), "source")


def tiny_pdf():
    """A one-page PDF written by hand: signing it costs a fraction of rendering a summary."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def store_signed_pdf(app, now):
    """A PAdES-signed PDF (the clinic's signing key) stored as the demo's signed session's document; its SHA-256."""
    from opsmgr.demo.service import SIGNED_NOTE_MRN
    from opsmgr.notes.models import SessionNote
    from opsmgr.patients.models import Patient
    from opsmgr.reports.service import new_document_id
    from opsmgr.sessions.models import InfusionSession

    with app.app_context():
        visit = db.session.scalars(
            select(InfusionSession).join(SessionNote, SessionNote.session_id == InfusionSession.id)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .where(Patient.mrn == SIGNED_NOTE_MRN, SessionNote.signed_at.is_not(None))).first()
        document_id = new_document_id()
        content = sign_pdf(tiny_pdf(), signer_name="Demo Physician", signer_credentials="MD", signed_at=now,
                           zone=UTC, document_id=document_id, reason="Session note signed", app=app)
        db.session.add(ReportDocument(document_id=document_id, kind="session", patient_id=visit.patient_id,
                                      session_id=visit.id, series_id=visit.series_id,
                                      sha256=hashlib.sha256(content).hexdigest(), content=content, created_at=now))
        db.session.commit()
    return hashlib.sha256(content).hexdigest()


class LiveWriter(threading.Thread):
    """The app at work: appends audit events, one transaction each, until stopped."""

    def __init__(self, app, now):
        super().__init__(daemon=True)
        self.app, self.now, self.written = app, now, 0
        self.started_writing, self.stop = threading.Event(), threading.Event()
        self.error = None

    def run(self):
        try:
            with self.app.app_context():
                while not self.stop.is_set():
                    record_event("patient.viewed", actor=SYSTEM, now=self.now, key=self.app.config["AUDIT_KEY"])
                    db.session.commit()
                    self.written += 1
                    self.started_writing.set()
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.error = error
            self.started_writing.set()


def table_counts(app):
    from sqlalchemy import inspect

    with app.app_context(), db.engine.connect() as conn:
        return {name: conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()  # noqa: S608 - table names
                for name in inspect(conn).get_table_names()}


def test_a_backup_taken_while_the_app_writes_restores_into_a_fresh_database_and_verifies(
        backend, demo_source, apps, new_database, key_file, clock, tmp_path):
    source = demo_source
    pdf_sha256 = store_signed_pdf(source, clock())
    with source.app_context():  # what the scheduler does every few minutes
        assert anchor_head(anchor_path(source.instance_path), now=clock())
    writer = LiveWriter(source, clock())
    writer.start()
    writer.started_writing.wait(10)
    try:
        code, output = invoke(source, "backup", tmp_path / "clinic.backup", "--key-file", key_file)
    finally:
        writer.stop.set()
        writer.join(10)
    assert writer.error is None and writer.written > 0
    assert code == 0, output
    assert "encrypted" in output and bundle.is_encrypted(tmp_path / "clinic.backup")

    target = apps(new_database(), "restored")
    signing_key = Path(source.instance_path) / SELF_SIGNED_FILENAME
    if signing_key.exists():  # the operator puts the keys in place
        shutil.copyfile(signing_key, tmp_path / "restored" / SELF_SIGNED_FILENAME)
    code, output = invoke(target, "restore", tmp_path / "clinic.backup", "--key-file", key_file)
    assert code == 0, output
    for check in ("integrity_check: ok" if backend == "sqlite" else "tables:", "counts and checksums match",
                  "1 external anchor match", "1 document, every SHA-256 matches", "Restored and verified"):
        assert check in output

    live, restored = table_counts(source), table_counts(target)
    assert restored["patient"] == live["patient"] > 0 and restored["report_document"] == 1
    assert {name: count for name, count in restored.items() if not name.startswith("audit_")} == \
        {name: count for name, count in live.items() if not name.startswith("audit_")}
    assert restored["audit_event"] < live["audit_event"]  # the writer went on after the snapshot
    assert invoke(target, "audit", "verify")[0] == 0  # with the anchor file the restore put in place
    assert (tmp_path / "restored" / ANCHOR_FILE).read_text() == (tmp_path / "source" / ANCHOR_FILE).read_text()
    with target.app_context():
        document = db.session.scalars(select(ReportDocument)).one()
        assert hashlib.sha256(document.content).hexdigest() == document.sha256 == pdf_sha256
        assert verify_pdf(document.content, app=target).intact
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)))
        assert actions == ["backup.restored"]
    with source.app_context():
        assert db.session.scalar(select(func.count()).where(AuditEvent.action == "backup.created")) == 1


@pytest.fixture
def small_backup(apps, new_database, key_file, tmp_path, clock):
    """(source app, backup path): a migrated database with its first audit events, backed up encrypted."""
    source = apps(new_database(template=True))
    with source.app_context():
        for _ in range(3):
            record_event("patient.viewed", actor=SYSTEM, now=clock(), key=source.config["AUDIT_KEY"])
        db.session.commit()
    code, output = invoke(source, "backup", tmp_path / "small.backup", "--key-file", key_file)
    assert code == 0, output
    return source, tmp_path / "small.backup"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_backup_is_refused_without_a_key_unless_no_encrypt_is_explicit(apps, new_database, tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("OPSMGR_BACKUP_KEY", raising=False)
    monkeypatch.delenv("OPSMGR_BACKUP_KEY_FILE", raising=False)
    source = apps(new_database(template=True))
    code, output = invoke(source, "backup", tmp_path / "plain.backup")
    assert code != 0 and "No backup key" in output and not (tmp_path / "plain.backup").exists()
    assert invoke(source, "backup", tmp_path / "plain.backup", "--no-encrypt")[0] == 0
    assert not bundle.is_encrypted(tmp_path / "plain.backup")

    target = apps(new_database(), "restored")
    code, output = invoke(target, "restore", tmp_path / "plain.backup")
    assert code == 0, output
    assert "not encrypted" in output


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_refuses_a_wrong_key_and_an_altered_file_and_changes_nothing(small_backup, apps, new_database,
                                                                            tmp_path):
    _, path = small_backup
    wrong = tmp_path / "wrong.key"
    wrong.write_text("another key, long enough to pass\n")
    altered = tmp_path / "altered.backup"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    altered.write_bytes(bytes(content))
    target = apps(new_database(), "restored")
    for backup_file, key in ((path, wrong), (altered, tmp_path / "backup.key")):
        code, output = invoke(target, "restore", backup_file, "--key-file", key)
        assert code != 0 and "cannot be decrypted" in output, output
    code, output = invoke(target, "restore", path)
    assert code != 0 and "encrypted" in output
    assert table_counts(target) == {}


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(small_backup, key_file):
    source, path = small_backup
    code, output = invoke(source, "restore", path, "--key-file", key_file)
    assert code != 0 and "not empty" in output and "--force" in output
    with source.app_context(), db.engine.begin() as conn:  # changed since the backup: all of it goes
        conn.exec_driver_sql("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)")
    code, output = invoke(source, "restore", path, "--key-file", key_file, "--force")
    assert code == 0, output
    counts = table_counts(source)
    assert "stray_table" not in counts and counts["audit_event"] == 3 + 1  # the backup's 3, then backup.restored


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_under_another_audit_key_says_so_fails_the_chain_and_is_not_audited(small_backup, apps,
                                                                                   new_database, key_file):
    _, path = small_backup
    target = apps(new_database(), "restored", AUDIT_KEY="a different audit key")
    code, output = invoke(target, "restore", path, "--key-file", key_file)
    assert code == 1
    assert "FAIL  audit chain" in output and "FAIL  key fingerprints: differ: audit key" in output
    assert "audit key (OPSMGR_AUDIT_KEY or instance/audit_key) differs" in output
    assert "RESTORED WITH PROBLEMS" in output and "not written to the audit trail" in output


def test_an_unencrypted_bundle_whose_database_was_swapped_is_refused(tmp_path):
    """Without encryption the manifest's file hashes still catch a changed member."""
    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": 1, "source": "sqlite",
                                    "files": {"database.sqlite3": bundle.file_sha256(first)}}))
    bundle.write_bundle(tmp_path / "x.backup", {"manifest.json": manifest, "database.sqlite3": second}, None)
    (tmp_path / "out").mkdir()
    opened = bundle.open_bundle(tmp_path / "x.backup", None, tmp_path / "out")
    from opsmgr.backup.service import BackupError, _checked_manifest

    with pytest.raises(BackupError, match="does not match its manifest"):
        _checked_manifest(opened.folder, "sqlite")
