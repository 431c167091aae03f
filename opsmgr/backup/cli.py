"""`flask backup OUT` and `flask restore IN`: see opsmgr.backup.service; the key comes from the operator."""
import os
from pathlib import Path

import click
from flask.cli import with_appcontext

from opsmgr.audit.service import Actor
from opsmgr.backup.service import BackupError, create_backup, plural, restore_backup
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db

CLI_ACTOR = Actor(user_id=None, username="cli", role=None, ip=None)
KEY_HELP = ("A file holding the backup key (default: $OPSMGR_BACKUP_KEY_FILE; or the key itself in "
            "$OPSMGR_BACKUP_KEY). Make one with `openssl rand -base64 32` and keep a copy away from the backups.")
key_file_option = click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                               envvar="OPSMGR_BACKUP_KEY_FILE", help=KEY_HELP)


def backup_key(key_file):
    """The operator's key: --key-file (or OPSMGR_BACKUP_KEY_FILE), else OPSMGR_BACKUP_KEY; None without one."""
    if key_file is not None:
        return key_file.read_text(encoding="utf-8").strip() or None
    return os.environ.get("OPSMGR_BACKUP_KEY", "").strip() or None


def progress(message):
    click.echo(message)


@click.command("backup")
@click.argument("out", type=click.Path(path_type=Path))
@key_file_option
@click.option("--no-encrypt", is_flag=True, help="Write the backup unencrypted (it holds PHI): only when you must.")
@with_appcontext
def backup(out, key_file, no_encrypt):
    """Back up the database (safe while the app runs) with the audit anchors, key fingerprints and a
    manifest into OUT, a new file or a folder to name one in; encrypted with the backup key."""
    key = None if no_encrypt else backup_key(key_file)
    if key is None and not no_encrypt:
        raise click.ClickException("No backup key: give --key-file or set OPSMGR_BACKUP_KEY_FILE or OPSMGR_BACKUP_KEY. "
                                   "A backup holds PHI; to write it unencrypted anyway, give --no-encrypt.")
    try:
        result = create_backup(out, key=key, actor=CLI_ACTOR, now=utcnow(), progress=progress)
    except BackupError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    manifest = result.manifest
    rows = sum(each["rows"] for each in manifest["tables"].values())
    documents = plural(len(manifest["documents"]), "stored PDF")
    click.echo(f"Backed up {len(manifest['tables'])} tables ({rows} rows), {documents}, "
               f"schema {manifest['schema_revision']}: {result.path} ({result.size / 1e6:.1f} MB, "
               f"{'encrypted' if key else 'NOT encrypted'}) in {result.seconds:.1f} s.")


@click.command("restore")
@click.argument("source", metavar="IN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@key_file_option
@click.option("--force", is_flag=True, help="Replace a database that is not empty.")
@with_appcontext
def restore(source, key_file, force):
    """Restore the backup IN into the configured database (stop the app first), then verify it against
    its manifest: integrity, row counts and checksums, the audit chain, every PDF's hash, the keys."""
    try:
        report = restore_backup(source, key=backup_key(key_file), force=force, actor=CLI_ACTOR, now=utcnow(),
                                progress=progress)
    except BackupError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    manifest = report.manifest
    click.echo(f"Backup made {manifest['created_at']} from {manifest['source']}, schema {manifest['schema_revision']}.")
    for name, passed, detail in report.checks:
        click.echo(f"  {'ok  ' if passed else 'FAIL'}  {name}: {detail}")
    for warning in report.warnings:
        click.echo(f"  WARNING: {warning}")
    if not report.audited:
        click.echo("  WARNING: the restore was not written to the audit trail: it would be chained with a "
                   "different audit key. Put the original audit key in place.")
    if not report.ok:
        click.echo(f"RESTORED WITH PROBLEMS in {report.seconds:.1f} s: see FAIL and WARNING above.")
        raise SystemExit(1)
    click.echo(f"Restored and verified in {report.seconds:.1f} s.")
