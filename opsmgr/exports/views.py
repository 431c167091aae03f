"""A patient's FHIR Bundle, the admins' CSV exports and a patient's accounting of disclosures."""
import io
import re

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.exports import csv_exports, disclosures
from opsmgr.exports.forms import CsvExportForm, DisclosureLookupForm
from opsmgr.extensions import db
from opsmgr.patients.models import Patient
from opsmgr.permissions import can_export_csv, can_export_patient, can_view_disclosures

bp = Blueprint("exports", __name__)


@bp.get("/patients/<int:patient_id>/fhir.json", endpoint="patient_fhir")
@requires(can_export_patient)
def patient_fhir(patient_id):
    """The patient's record as a FHIR R4 Bundle (type collection), validated before it is sent."""
    patient = db.get_or_404(Patient, patient_id)
    actor, now = current_actor(), utcnow()
    if not can_export_patient(current_user, patient):
        record("export.fhir", actor=actor, now=now, outcome="denied", object_type="patient", object_id=patient.id,
               patient_id=patient.id, details={"scope": "patient"})
        abort(403)
    from opsmgr.exports import service  # imported on use: the FHIR models take a quarter of a second

    body, _counts = service.patient_bundle(patient, base_url=request.host_url, actor=actor, now=now, via="web")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", patient.mrn)
    return Response(body, mimetype="application/fhir+json",
                    headers={"Content-Disposition": f'attachment; filename="patient-{name}-fhir.json"'})


@bp.get("/patients/<int:patient_id>/disclosures", endpoint="disclosures")
@requires(can_view_disclosures)
def disclosure_page(patient_id):
    """Every export, PDF download and break-glass that touched the patient, newest first."""
    patient = db.get_or_404(Patient, patient_id)
    rows = disclosures.disclosures(patient.id, zone=clinic_zone())
    html = render_template("exports/disclosures.html", patient=patient, rows=rows)
    disclosures.audit_viewed(patient.id, len(rows), actor=current_actor(), now=utcnow())
    return html


@bp.get("/admin/exports", endpoint="admin_page")
@requires(can_export_csv)
def admin_page():
    return _admin_page(CsvExportForm(formdata=None), DisclosureLookupForm(formdata=None))


def _admin_page(form, lookup, status=200):
    return render_template("exports/admin.html", form=form, lookup=lookup), status


@bp.get("/admin/exports/export.csv", endpoint="csv_download")
@requires(can_export_csv)
def csv_download():
    """The CSV of the chosen kind and dates; an invalid choice gets the form back with the message at its field."""
    form = CsvExportForm(request.args)
    if not form.validate():
        return _admin_page(form, DisclosureLookupForm(formdata=None), 400)
    period = csv_exports.Period(form.start.data, form.end.data)
    buffer = io.StringIO(newline="")
    csv_exports.write(buffer, form.kind.data, period, zone=clinic_zone(), actor=current_actor(), now=utcnow(),
                      via="web")
    filename = f"{form.kind.data}-{period.since.isoformat()}-to-{period.until.isoformat()}.csv"
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/admin/exports/disclosures", endpoint="disclosure_lookup")
@requires(can_view_disclosures)
def disclosure_lookup():
    """An admin (who has no patient chart) finds a patient's disclosures by MRN."""
    lookup = DisclosureLookupForm(request.args)
    if lookup.validate():
        patient_id = db.session.scalar(select(Patient.id).where(Patient.mrn == lookup.mrn.data))
        if patient_id is not None:
            return redirect(url_for("exports.disclosures", patient_id=patient_id))
        lookup.mrn.errors = [*lookup.mrn.errors, "No patient has this MRN."]
    if not can_export_csv(current_user):
        abort(400)
    return _admin_page(CsvExportForm(formdata=None), lookup, 400)
