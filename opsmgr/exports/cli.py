"""`flask export …`: FHIR R4 (one patient's Bundle, or every patient as NDJSON per resource type, as FHIR
Bulk Data does) and CSV lists for a date range. Each export is audited as the shell ("cli")."""
import io
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from opsmgr.core.cli import iso_date
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.exports import csv_exports
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.reports.cli import CLI_ACTOR
from opsmgr.reports.export import make_dir, write_atomically

export = AppGroup("export", help="FHIR R4 and CSV exports.")


def _base_url():
    return current_app.config.get("PUBLIC_URL") or ""


@export.command("fhir")
@click.option("--patient", "mrn", metavar="MRN", help="One patient's Bundle, by MRN.")
@click.option("--all", "everyone", is_flag=True, help="Every patient, as NDJSON files per resource type.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="With --patient: the JSON file to write; with --all: the folder (created, mode 700).")
def export_fhir(mrn, everyone, out):
    """Write FHIR R4: a Bundle (type collection) of one patient, or Patient.ndjson, Observation.ndjson…
    for all. DocumentReference URLs start with OPSMGR_PUBLIC_URL when it is set."""
    from opsmgr.exports import service  # imported on use: the FHIR models take a quarter of a second

    if bool(mrn) == everyone:
        raise click.UsageError("Give either --patient MRN or --all.")
    if mrn:
        patient = db.session.scalar(select(Patient).where(Patient.mrn == mrn))
        if patient is None:
            raise click.BadParameter(f"no patient has the MRN {mrn!r}.", param_hint="'--patient'")
        body, counts = service.patient_bundle(patient, base_url=_base_url(), actor=CLI_ACTOR, now=utcnow(), via="cli")
        _write(out, body.encode("utf-8"))
        click.echo(f"Wrote {out}: " + _counted(counts) + ".")
        return
    _bulk(out)


def _bulk(out):
    from opsmgr.exports import service

    try:
        make_dir(out)
    except OSError as error:
        raise click.BadParameter(f"cannot create {out}: {error.strerror}.", param_hint="'--out'") from None
    ids = service.patient_ids()
    files, counts = {}, {}
    try:
        with click.progressbar(ids, label="Exporting FHIR", file=sys.stderr) as bar:
            for patient_id in bar:
                for name, lines in service.bulk_patient(patient_id, base_url=_base_url(), actor=CLI_ACTOR,
                                                        now=utcnow()).items():
                    handle = files.get(name) or files.setdefault(name, _part(out, name))
                    handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
                    counts[name] = counts.get(name, 0) + len(lines)
                db.session.commit()
                db.session.expunge_all()
    finally:
        for handle in files.values():
            handle.close()
    for name in files:
        (out / f".{name}.ndjson.part").replace(out / f"{name}.ndjson")
    service.audit_bulk(counts, len(ids), actor=CLI_ACTOR, now=utcnow())
    db.session.commit()
    click.echo(f"{len(ids)} patient(s) into {out}: " + _counted(counts) + ".")


def _part(out, name):
    path = out / f".{name}.ndjson.part"
    handle = open(path, "wb")  # noqa: SIM115 - closed after the loop
    path.chmod(0o600)
    return handle


def _counted(counts):
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "no resources"


def _write(path, content):
    """The file, renamed into place only after its audit row is committed: never an unaudited file."""
    try:
        write_atomically(path, content, before_replace=db.session.commit)
    except OSError as error:
        raise click.BadParameter(f"cannot write {path}: {error.strerror}.", param_hint="'--out'") from None


@export.command("csv")
@click.option("--kind", required=True, type=click.Choice(csv_exports.KINDS))
@click.option("--since", required=True, callback=iso_date, metavar="YYYY-MM-DD", help="First clinic date.")
@click.option("--until", required=True, callback=iso_date, metavar="YYYY-MM-DD",
              help="Last clinic date (inclusive).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The CSV file to write.")
def export_csv(kind, since, until, out):
    """Write the patients seen, sessions, scores or vital signs of a date range as CSV."""
    if until < since:
        raise click.BadParameter("the last date is before the first.", param_hint="'--until'")
    period, zone = csv_exports.Period(since, until), clinic_zone()
    total = csv_exports.count_rows(kind, period, zone)
    buffer = io.StringIO(newline="")
    with click.progressbar(length=total, label=f"Exporting {kind}", file=sys.stderr) as bar:
        rows = csv_exports.write(buffer, kind, period, zone=zone, actor=CLI_ACTOR, now=utcnow(), via="cli",
                                 progress=bar.update)
    _write(out, buffer.getvalue().encode("utf-8"))
    click.echo(f"Wrote {rows} row(s) to {out}.")
