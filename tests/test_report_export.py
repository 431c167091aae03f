"""`flask reports export`: signed PDFs written to a folder with a manifest, resumable, tampered documents
refused. One world per module (a signed session and a stored series summary), exported once: that
first run makes the session's summary (the one PDF render); every test starts from a copy of the
database and folder it left."""
import csv
import hashlib
import json
import shutil
import subprocess
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from config import TestConfig
from opsmgr import create_app
from opsmgr.audit.models import AuditEvent
from opsmgr.auth.models import StaffUser
from opsmgr.auth.service import actor_for
from opsmgr.demo.service import PATH, SIGNED_NOTE
from opsmgr.extensions import db
from opsmgr.notes import service as notes
from opsmgr.patients.models import Patient
from opsmgr.reports import export
from opsmgr.reports.models import ReportDocument
from opsmgr.schedule import service as schedule
from tests.conftest import PASSWORD, FrozenClock
from tests.factories import FACTORY_ACTOR, create_chairs, create_patient, create_user, order_series


class World:
    """An app on a SQLite file of its own whose state can be put back to a snapshot between tests."""

    def __init__(self, folder, template):
        self.folder = folder
        self.path = folder / "opsmgr.sqlite3"
        shutil.copyfile(template, self.path)
        self.clock = FrozenClock()
        self.app = create_app(TestConfig(f"sqlite:///{self.path}", folder / "instance", CLOCK=self.clock))
        self.runner = self.app.test_cli_runner()

    def export(self, out, *args):
        return self.runner.invoke(args=["reports", "export", "--out", str(out), *args])

    def snapshot(self, name):
        with self.app.app_context():
            db.engine.dispose()  # the last connection closed checkpoints the WAL into the file
        shutil.copyfile(self.path, self.folder / name)

    def restore(self, name):
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.folder / name, self.path)

    def rows(self, stmt):
        with self.app.app_context():
            return list(db.session.execute(stmt))

    def change(self, stmt):
        with self.app.app_context():
            db.session.execute(stmt)
            db.session.commit()


def signed_session(clock, **patient):
    """A session walked to discharge (status only, as the demo walks past sessions) whose note a physician
    has signed; returns it. Call in an app context."""
    create_chairs(1)
    nurse, physician = (db.session.get(StaffUser, create_user(role=role, username=None, password=PASSWORD,
                                                              now=clock()).id) for role in ("nurse", "physician"))
    patient = create_patient(now=clock(), **patient)
    visit = order_series(patient_id=patient.id, now=clock(), start_on=clock().date() + timedelta(days=4)).sessions[0]
    now = clock.advance(days=5)
    for state in PATH:
        schedule.change_status(visit, state, reason="", actor=FACTORY_ACTOR, now=now, gate_passed=True)
    saved = notes.save_draft(visit, SIGNED_NOTE, expected_version=0, actor=actor_for(nurse), now=now).row
    notes.complete_note(visit, expected_version=saved.version, actor=actor_for(nurse), now=now)
    notes.sign_note(visit, physician=physician, password=PASSWORD, expected_version=saved.version, ip=None, now=now)
    db.session.commit()
    return visit


def store(document_id, kind, *, patient_id, series_id, session_id=None, created_at, content=b"%PDF-1.7\n%%EOF\n"):
    """A stored document put in directly (a series summary, or a session's without rendering it)."""
    db.session.add(ReportDocument(
        document_id=document_id, kind=kind, patient_id=patient_id, series_id=series_id, session_id=session_id,
        session_count=1 if kind == "series" else None, sha256=hashlib.sha256(content).hexdigest(), content=content,
        created_at=created_at, created_by_id=None))
    db.session.commit()


@pytest.fixture(scope="module")
def world(sqlite_template, tmp_path_factory):
    """A signed session whose summary was never downloaded and a stored series summary of another
    patient (an MRN with a slash), exported once to ``first``."""
    world = World(tmp_path_factory.mktemp("export"), sqlite_template)
    with world.app.app_context():
        visit = signed_session(world.clock, mrn="EXP-0001", legal_name="Ana Export")
        other = create_patient(now=world.clock(), mrn="EXP/0002", legal_name="Bo Other")
        series = order_series(patient_id=other.id, now=world.clock(), start_on=world.clock().date())
        store("SERIES0000000000001", "series", patient_id=other.id, series_id=series.id,
              created_at=world.clock.advance(hours=1))
        world.session_id, world.series_id = visit.id, visit.series_id
        world.signed_on = world.clock().astimezone(ZoneInfo("America/New_York")).date()
    world.first = world.export(world.folder / "first", "--since", "2026-01-01")
    world.snapshot("exported.sqlite3")
    yield world
    with world.app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def exported(world, tmp_path):
    """The world just after the first export, with a copy of its folder at ``world.out``."""
    world.restore("exported.sqlite3")
    world.out = tmp_path / "out"
    shutil.copytree(world.folder / "first", world.out)
    return world


def manifest(out):
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def audits(world, action):
    return world.rows(select(AuditEvent.object_id, AuditEvent.patient_id, AuditEvent.username, AuditEvent.outcome,
                             AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.id))


def documents(world):
    return {row.document_id: row for row in world.rows(
        select(ReportDocument.document_id, ReportDocument.kind, ReportDocument.sha256, ReportDocument.patient_id,
               ReportDocument.created_by_id))}


def test_the_first_export_makes_the_missing_summary_and_its_manifest_matches_the_files(world):
    world.restore("exported.sqlite3")
    first, out = world.first, world.folder / "first"
    assert first.exit_code == 0, first.output
    assert "2 written, 0 already there, 0 rewritten, 0 refused; summaries made now: 1" in first.stdout
    assert "Exporting" in first.stderr and "Exporting" not in first.stdout  # the progress bar
    stored = documents(world)
    assert {row.kind for row in stored.values()} == {"session", "series"}
    rows = manifest(out)
    assert {row["document_id"] for row in rows} == set(stored)
    for row in rows:
        path = out / row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"] == stored[row["document_id"]].sha256
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        assert path.name.startswith(f"{row['kind']}-") and path.parent.name == row["mrn"].replace("/", "_")
    session_row = next(row for row in rows if row["kind"] == "session")
    assert session_row["session_id"] == str(world.session_id) and session_row["mrn"] == "EXP-0001"
    assert session_row["signed_at"].endswith("-05:00") and world.signed_on.isoformat() in session_row["file"]
    assert (out / "manifest.csv").stat().st_mode & 0o777 == 0o600 and not list(out.glob("**/.*opsmgr-part"))
    check = subprocess.run(["qpdf", "--check", str(out / session_row["file"])], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    exported_rows = audits(world, "report.exported")
    assert [(object_id, username) for object_id, _patient, username, _outcome, _details in exported_rows] == \
        [(row["document_id"], "cli") for row in sorted(rows, key=lambda row: row["kind"] != "session")]
    assert all(patient_id == stored[object_id].patient_id for object_id, patient_id, *_ in exported_rows)
    [(_none, _patient, _user, outcome, details)] = audits(world, "report.export")
    assert outcome == "ok" and json.loads(details) == {
        "since": "2026-01-01", "series_id": None, "written": 2, "present": 0, "rewritten": 0, "refused": 0,
        "failed": 0, "generated": 1, "unlisted": 0}
    assert "EXP" not in details and session_row["patient_name"] not in details


def test_a_rerun_writes_nothing_removes_leftovers_and_lists_files_of_other_scopes(exported):
    leftover = next(exported.out.glob("EXP-0001/*.pdf")).with_name(".session.pdf.x1y2.opsmgr-part")
    leftover.write_bytes(b"half")
    before = manifest(exported.out)
    again = exported.export(exported.out, "--since", "2026-01-01")
    assert again.exit_code == 0, again.output
    assert "0 written, 2 already there, 0 rewritten" in again.stdout and "Removed 1 temporary file" in again.stderr
    assert not leftover.exists() and manifest(exported.out) == before
    assert len(audits(exported, "report.exported")) == 2  # nothing disclosed again
    later = exported.export(exported.out, "--since", "2099-01-01")
    assert "0 written, 0 already there" in later.stdout and manifest(exported.out) == before


def test_an_interrupted_export_resumes_and_finishes(exported, monkeypatch, tmp_path):
    out, real = tmp_path / "resumed", export.export_document
    calls = []

    def cut_after_the_first(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(real(*args, **kwargs))

    monkeypatch.setattr(export, "export_document", cut_after_the_first)
    cut = exported.export(out, "--since", "2026-01-01")
    assert cut.exit_code == 1 and len(list(out.glob("*/*.pdf"))) == 1 and not (out / "manifest.csv").exists()
    monkeypatch.setattr(export, "export_document", real)
    resumed = exported.export(out, "--since", "2026-01-01")
    assert resumed.exit_code == 0, resumed.output
    assert "1 written, 1 already there, 0 rewritten, 0 refused" in resumed.stdout
    assert {row["document_id"] for row in manifest(out)} == set(documents(exported))


def test_a_changed_file_is_rewritten_and_said(exported):
    [row] = [row for row in manifest(exported.out) if row["kind"] == "session"]
    path = exported.out / row["file"]
    changed = bytearray(path.read_bytes())
    changed[2000] ^= 0x01
    path.write_bytes(bytes(changed))
    again = exported.export(exported.out, "--since", "2026-01-01")
    assert again.exit_code == 0 and "0 written, 1 already there, 1 rewritten" in again.stdout
    assert f"Rewrote {row['document_id']}" in again.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    assert json.loads(audits(exported, "report.exported")[-1].details)["result"] == "rewritten"


def test_a_tampered_stored_document_is_refused_audited_and_fails_the_run(exported, tmp_path):
    exported.change(update(ReportDocument).where(ReportDocument.kind == "series").values(content=b"%PDF-forged"))
    run = exported.export(tmp_path / "fresh", "--since", "2026-01-01")
    assert run.exit_code == 1
    assert "1 written, 0 already there, 0 rewritten, 1 refused" in run.stdout
    assert "SERIES0000000000001" in run.stderr and not list((tmp_path / "fresh").glob("*/series-*"))
    assert [row["kind"] for row in manifest(tmp_path / "fresh")] == ["session"]
    [(object_id, _patient, username, outcome, _details)] = audits(exported, "report.integrity_failed")
    assert (object_id, username, outcome) == ("SERIES0000000000001", "cli", "denied")
    assert audits(exported, "report.export")[-1].outcome == "denied"


def test_manifest_cells_that_a_spreadsheet_would_run_are_quoted(exported):
    exported.change(update(Patient).where(Patient.mrn == "EXP-0001").values(legal_name="=HYPERLINK(\"x\")"))
    assert exported.export(exported.out, "--series", str(exported.series_id)).exit_code == 0
    [row] = [row for row in manifest(exported.out) if row["kind"] == "session"]
    assert row["patient_name"] == "'=HYPERLINK(\"x\")"
    # Every cell rule (opsmgr.core.csvfiles.safe_cell) is table-tested in tests/test_hardening.py.


def test_bad_input_gets_clear_messages(world, tmp_path):
    (tmp_path / "a-file").write_text("")
    for args, message in (
            (["--since", "2026-02-30"], "'2026-02-30' is not a date; write it as YYYY-MM-DD"),
            (["--since", "yesterday"], "'yesterday' is not a date"),
            (["--series", "99999"], "there is no series with id 99999"),
            ([], "Give --since YYYY-MM-DD, --series ID, or both."),
    ):
        result = world.export(tmp_path / "out", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
    as_file = world.export(tmp_path / "a-file", "--since", "2026-01-01")
    assert as_file.exit_code == 2 and "is a file" in as_file.stderr
    assert not (tmp_path / "out").exists()



@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_export_on_postgresql_writes_lists_and_skips_on_a_rerun(app, runner, clock, tmp_path):
    """The scope queries, per-document commits and audit rows on PostgreSQL, without a PDF render: the
    signed session's summary is stored beforehand (making one is the web download's code, tested there)."""
    with app.app_context():
        visit = signed_session(clock, mrn="PG-0001")
        store("PGSESSION1", "session", patient_id=visit.patient_id, series_id=visit.series_id,
              session_id=visit.id, created_at=clock())
        store("PGSERIES01", "series", patient_id=visit.patient_id, series_id=visit.series_id,
              created_at=clock.advance(hours=1))
        series_id = visit.series_id
    args = ["reports", "export", "--since", clock().date().isoformat(), "--series", str(series_id),
            "--out", str(tmp_path)]
    first = runner.invoke(args=args)
    assert first.exit_code == 0 and "2 written, 0 already there" in first.stdout, first.output
    assert {row["document_id"]: row["file"] for row in manifest(tmp_path)} == {
        "PGSESSION1": f"PG-0001/session-{clock().date()}-PGSESSION1.pdf",
        "PGSERIES01": f"PG-0001/series-{clock().date()}-PGSERIES01.pdf"}
    again = runner.invoke(args=args)
    assert again.exit_code == 0 and "0 written, 2 already there" in again.stdout
    with app.app_context():
        assert db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("report.export%"))
                                  .order_by(AuditEvent.id)).all() == ["report.exported"] * 2 + ["report.export"] * 2
