"""`flask reports …`: report tools for the admin."""
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.audit.service import Actor
from opsmgr.core.cli import iso_date
from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.reports import export as bulk
from opsmgr.reports.signing import SigningKeyError, signing_identity
from opsmgr.series.models import InfusionSeries

reports = AppGroup("reports", help="PDF report tools.")
#: Who the export's audit rows name (as `flask users` does): the shell, not a staff member.
CLI_ACTOR = Actor(user_id=None, username="cli", role=None, ip=None)


@reports.command("signing-key")
@click.option("--pem", is_flag=True, help="Print only the certificate as PEM (to give to PDF readers to trust).")
def signing_key(pem):
    """Show the certificate that signs report PDFs; creates the per-install key on first use."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import load_der_x509_certificate

    try:
        identity = signing_identity(current_app._get_current_object())
    except SigningKeyError as error:
        raise click.ClickException(str(error)) from None
    cert = identity.certificate
    if pem:
        click.echo(load_der_x509_certificate(cert.dump()).public_bytes(Encoding.PEM).decode(), nl=False)
        return
    click.echo(f"Key:         {identity.source}")
    click.echo(f"Subject:     {cert.subject.human_friendly}")
    click.echo(f"Issuer:      {cert.issuer.human_friendly}" + (" (self-signed)" if cert.self_signed else ""))
    click.echo(f"Valid until: {cert.not_valid_after:%Y-%m-%d}")
    click.echo(f"SHA-256:     {cert.sha256_fingerprint}")


@reports.command("export")
@click.option("--since", callback=iso_date, metavar="YYYY-MM-DD",
              help="Documents signed on or after this date (the clinic's zone).")
@click.option("--series", "series_id", type=click.IntRange(min=1), default=None, metavar="ID",
              help="Documents of this series (with --since: only those signed since then).")
@click.option("--out", required=True, type=click.Path(file_okay=False, writable=True, path_type=Path),
              help="Folder to write to (created, mode 700); run again with the same folder to resume.")
def export_documents(since, series_id, out):
    """Write the signed PDFs in scope to OUT/<MRN>/ with a manifest.csv of document IDs, patients and SHA-256.

    Makes and stores a signed session's summary that was never downloaded. Safe to interrupt: run it
    again to finish; files already there with the right hash are skipped. Exits 1 if a stored document
    no longer matches its hash (refused and audited) or a summary could not be made."""
    if since is None and series_id is None:
        raise click.UsageError("Give --since YYYY-MM-DD, --series ID, or both.")
    if series_id is not None and db.session.get(InfusionSeries, series_id) is None:
        raise click.BadParameter(f"there is no series with id {series_id}.", param_hint="'--series'")
    scope = bulk.Scope(since=since, series_id=series_id)
    try:
        bulk.make_dir(out)
    except OSError as error:
        raise click.BadParameter(f"cannot create {out}: {error.strerror}.", param_hint="'--out'") from None
    result = bulk.Result()
    removed = bulk.remove_leftovers(out)
    steps = bulk.plan(scope)
    db.session.rollback()
    try:
        with click.progressbar(steps, label="Exporting", file=sys.stderr) as bar:
            for step in bar:
                bulk.run_step(step, out, result, actor=CLI_ACTOR, clock=utcnow)
    except SigningKeyError as error:
        db.session.rollback()
        raise click.ClickException(f"{error} Nothing more was exported; run again once it is fixed.") from None
    listed, unlisted = bulk.finish(out, scope, result, actor=CLI_ACTOR, now=utcnow())
    _report(out, result, removed, listed, unlisted)
    if not result.ok:
        raise SystemExit(1)


def _report(out, result, removed, listed, unlisted):
    """What happened, by document ID only (file names carry MRNs, so they are not printed)."""
    if removed:
        click.echo(f"Removed {removed} temporary file(s) left by an interrupted run.", err=True)
    for document_id in result.rewritten:
        click.echo(f"Rewrote {document_id}: the file in the folder did not match its SHA-256.", err=True)
    if result.refused:
        click.echo("Refused (stored bytes no longer match their SHA-256; audited, not written): "
                   + ", ".join(result.refused), err=True)
    if result.failed:
        click.echo("Summaries not produced (see the log), sessions: " + ", ".join(map(str, result.failed)), err=True)
    if unlisted:
        click.echo(f"{unlisted} PDF(s) in the folder do not match their stored record and are not in the manifest.",
                   err=True)
    counts = result.counts()
    click.echo(f"{counts['written']} written, {counts['present']} already there, {counts['rewritten']} rewritten, "
               f"{counts['refused']} refused" + (f", {counts['failed']} not produced" if counts["failed"] else "")
               + f"; summaries made now: {counts['generated']}; {listed} document(s) in {out / bulk.MANIFEST}.")
