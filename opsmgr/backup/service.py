"""Back up the live database into one bundle, and restore one into the configured database and prove it.

The audit anchor file is copied before the snapshot (opsmgr.backup.databases), so every anchor it
holds names an event inside the snapshot.
"""
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from opsmgr.audit.anchor import ANCHOR_FILE, anchor_path
from opsmgr.audit.service import record
from opsmgr.backup import bundle
from opsmgr.backup.databases import (
    DUMPS,
    BackupError,
    has_tables,
    label,
    postgres_snapshot,
    restore_postgres,
    restore_sqlite,
    sqlite_snapshot,
)
from opsmgr.backup.manifest import FORMAT, fingerprints
from opsmgr.backup.verify import RestoreReport, plural, verify
from opsmgr.extensions import db

__all__ = ["BackupError", "create_backup", "plural", "restore_backup"]


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict
    seconds: float
    size: int


# --- backup ---------------------------------------------------------------------------------


def create_backup(out, *, key, actor, now, progress=lambda message: None):
    """Write a backup bundle of the configured database to `out` (a new file, or a folder to name one in)."""
    started = time.monotonic()
    app = current_app._get_current_object()
    kind = db.engine.dialect.name
    if kind not in DUMPS:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {kind}.")
    bundle.check_key(key)
    out = _new_file(Path(out), now)
    with tempfile.TemporaryDirectory(prefix=".opsmgr-backup-", dir=out.parent) as work:
        work = Path(work)
        members = {}
        anchors = anchor_path(app.instance_path)
        if anchors.exists():  # before the snapshot: every anchor then names an event inside it
            shutil.copyfile(anchors, work / ANCHOR_FILE)
            members[ANCHOR_FILE] = work / ANCHOR_FILE
        progress(f"Snapshot of the {label(kind)} database …")
        members[DUMPS[kind]] = work / DUMPS[kind]
        contents = (sqlite_snapshot if kind == "sqlite" else postgres_snapshot)(members[DUMPS[kind]])
        manifest = {"format": FORMAT, "created_at": now.isoformat(), "source": kind, **contents,
                    "keys": fingerprints(app), "files": {name: bundle.file_sha256(path)
                                                          for name, path in members.items()}}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        members = {"manifest.json": work / "manifest.json", **members}
        progress(f"Writing {'an encrypted' if key else 'an UNENCRYPTED'} bundle to {out} …")
        bundle.write_bundle(out, members, key)
    totals = _totals(manifest)
    record("backup.created", actor=actor, now=now, details={"source": kind, "encrypted": key is not None, **totals})
    return BackupResult(out, manifest, time.monotonic() - started, out.stat().st_size)


def _new_file(out, now):
    if out.is_dir():
        out = out / f"opsmgr-{now:%Y%m%dT%H%M%SZ}.backup"
    if out.exists():
        raise BackupError(f"{out} already exists; a backup never overwrites a file.")
    if not out.parent.is_dir():
        raise BackupError(f"The folder {out.parent} does not exist.")
    return out


def _totals(manifest):
    tables = manifest["tables"]
    return {"tables": len(tables), "rows": sum(each["rows"] for each in tables.values()),
            "documents": len(manifest["documents"])}


# --- restore --------------------------------------------------------------------------------


def restore_backup(path, *, key, force, actor, now, progress=lambda message: None):
    """Restore the bundle at `path` into the configured database, then verify it; returns a RestoreReport.
    Refuses (BackupError, nothing changed) a bundle it cannot read and a non-empty target without `force`."""
    started = time.monotonic()
    app = current_app._get_current_object()
    kind = db.engine.dialect.name
    with tempfile.TemporaryDirectory(prefix=".opsmgr-restore-", dir=_work_folder(app)) as work:
        work = Path(work)
        progress(f"Reading {path} …")
        try:
            opened = bundle.open_bundle(path, key, work)
        except bundle.BundleError as error:
            raise BackupError(str(error)) from None
        manifest = _checked_manifest(work, kind)
        report = RestoreReport(manifest)
        if not opened.encrypted:
            report.warnings.append("This backup file is not encrypted: it holds PHI in clear.")
        db.session.remove()
        if has_tables(kind) and not force:
            raise BackupError("The configured database is not empty; restoring would replace it. "
                              "Give --force to replace it.")
        progress(f"Restoring into the {label(kind)} database …")
        (restore_sqlite if kind == "sqlite" else restore_postgres)(work / DUMPS[kind], force)
        verify(report, app, work, kind, progress)
        _install_anchors(app, work, now)
    if report.manifest["keys"]["audit_key"] == fingerprints(app)["audit_key"]:
        record("backup.restored", actor=actor, now=now,
               details={"source": kind, "verified": report.ok, **_totals(manifest)})
        report.audited = True
    report.seconds = time.monotonic() - started
    return report


def _work_folder(app):
    folder = Path(app.instance_path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _checked_manifest(work, kind):
    try:
        manifest = json.loads((work / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError("The backup has no readable manifest; it is damaged or not an opsmgr backup.") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"This backup is in format {manifest.get('format')!r}; this version reads format {FORMAT}.")
    for name, digest in manifest["files"].items():
        if not (work / name).is_file() or bundle.file_sha256(work / name) != digest:
            raise BackupError(f"The backup's {name} does not match its manifest: the file was altered or damaged.")
    if manifest["source"] != kind:
        raise BackupError(f"This is a backup of a {label(manifest['source'])} database, but the configured "
                          f"database is {label(kind)}.")
    return manifest


def _install_anchors(app, work, now):
    """The bundle's anchor file becomes the instance's; a different one already there is kept aside."""
    target = anchor_path(app.instance_path)
    source = work / ANCHOR_FILE
    if target.exists() and (not source.exists() or bundle.file_sha256(target) != bundle.file_sha256(source)):
        target.rename(target.with_name(f"{ANCHOR_FILE}.before-restore-{now:%Y%m%dT%H%M%SZ}"))
    if source.exists():
        shutil.copyfile(source, target)
        target.chmod(0o600)
