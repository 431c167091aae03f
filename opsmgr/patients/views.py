"""Patient list, registration, chart and record edits."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.edits import EditConflict, attempt_merged, conflict_view, kept_message, merge_input, open_on, reopen
from opsmgr.core.guard import child_or_404, requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.corrections import service as corrections
from opsmgr.corrections.forms import EnteredInErrorForm, chart_forms
from opsmgr.extensions import db
from opsmgr.patients import chart as charts
from opsmgr.patients import service
from opsmgr.patients.duplicates import PossibleDuplicate
from opsmgr.patients.forms import (
    LABELS,
    ClinicalEditForm,
    ClinicalRegistrationForm,
    ConsentForm,
    ContraindicationForm,
    DemographicsEditForm,
    MedicationForm,
    RegistrationForm,
    SearchForm,
    StopMedicationForm,
    WeightForm,
    clinic_today,
    different_from_ids,
)
from opsmgr.patients.models import Patient, PatientMedication
from opsmgr.permissions import (
    can_edit_clinical_background,
    can_edit_demographics,
    can_mark_entered_in_error,
    can_register_patient,
    can_view_clinical_background,
    can_view_patients,
)

bp = Blueprint("patients", __name__, url_prefix="/patients")

PAGE_SIZE = 25


@bp.context_processor
def code_labels():
    return {"labels": LABELS}


@bp.route("/", endpoint="list")
@requires(can_view_patients)
def patient_list():
    form = SearchForm(request.args)
    form.validate()
    patients, total, page = [], 0, form.page.data if form.page.data and not form.page.errors else 1
    # An invalid filter lists nobody rather than more patients than were asked for.
    if not (form.q.errors or form.dob.errors):
        patients, total, page = service.search_patients(
            form.q.data, form.dob.data, page=page, page_size=PAGE_SIZE, actor=current_actor(), now=utcnow())
    # Render before the commit: committing expires the loaded rows and would reload each one.
    html = render_template("patients/list.html", form=form, patients=patients, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), clinical=can_view_clinical_background(current_user))
    db.session.commit()
    return html


@bp.route("/new", methods=["GET", "POST"])
@requires(can_register_patient)
def create():
    form = ClinicalRegistrationForm() if can_edit_clinical_background(current_user) else RegistrationForm()
    if form.validate_on_submit():
        def registered(patient):
            flash(f"{patient.display_name} is registered.", "success")
            return redirect(url_for("patients.detail", patient_id=patient.id))

        # Only the "different person" button sends the ids of the records it was shown beside.
        different_from = different_from_ids(request.form.get("different_from"))
        return attempt(lambda: service.register_patient(form.values(), actor=current_actor(), now=utcnow(),
                                                        different_from=different_from),
                       done=registered, refused=lambda error: _registration_refused(form, error))
    return render_template("patients/form.html", form=form, patient=None, conflict=None)


def _registration_refused(form, error):
    """A refusal at its fields; possible duplicates are listed above the form, which says why (a taken MRN
    is also said at the MRN)."""
    duplicates = error if isinstance(error, PossibleDuplicate) else None
    if duplicates is None or duplicates.mrn_taken:
        show_at_fields(form, error)
    return render_template("patients/form.html", form=form, patient=None, conflict=None, duplicates=duplicates)


@bp.route("/<int:patient_id>")
@requires(can_view_patients)
def detail(patient_id):
    return _chart(patient_id)


def _chart(patient_id, status=200, **submitted):
    """The chart, with any just-submitted form in place of a blank one (to show its errors)."""
    # Decided by role before loading: what a coordinator may not see is never read from the database.
    clinical = can_view_clinical_background(current_user)
    zone = clinic_zone()
    chart = charts.open_chart(patient_id, clinical=clinical, actor=current_actor(), now=utcnow(),
                              today=clinic_today(), zone=zone)
    if chart is None:
        abort(404)
    forms = _chart_forms(chart.patient, submitted) if clinical else {}
    html = render_template("patients/detail.html", chart=chart, patient=chart.patient, clinical=clinical,
                           forms=forms, marked_by=corrections.marked_by(chart.patient) if clinical else {},
                           trend=charts.trend(chart, zone))
    db.session.commit()
    return html, status


def _chart_forms(patient, submitted):
    forms = {"weight": WeightForm(formdata=None), "medication": MedicationForm(formdata=None),
             "contraindication": ContraindicationForm(formdata=None), "consent": ConsentForm(formdata=None)}
    forms["stop"] = {medication.id: StopMedicationForm.for_medication(medication, formdata=None)
                     for medication in patient.medications
                     if medication.stopped_on is None and not medication.is_entered_in_error}
    forms["stop"].update(submitted.pop("stop", {}))
    forms["in_error"] = chart_forms(patient, submitted.pop("in_error", {}))
    forms.update(submitted)
    return forms


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@requires(can_edit_demographics)
def edit(patient_id):
    patient = db.get_or_404(Patient, patient_id)
    if not can_edit_demographics(current_user, patient):
        abort(403)
    clinical = can_edit_clinical_background(current_user, patient)
    form = (ClinicalEditForm if clinical else DemographicsEditForm)(obj=patient)
    fields = service.DEMOGRAPHIC_FIELDS + (service.CLINICAL_FIELDS if clinical else ())
    if form.validate_on_submit():
        def saved(result):
            kept = kept_message(result.kept, result.saved_by, form)
            flash(" ".join(filter(None, ["Changes saved." if result.changed else "Nothing was changed.", kept])),
                  "success" if result.changed else "info")
            return redirect(url_for("patients.detail", patient_id=patient.id))

        return attempt_merged(lambda: service.update_patient(
            patient, form.values(), expected_version=form.version.data, allowed_fields=fields, **merge_input(form),
            actor=current_actor(), now=utcnow()), done=saved, refused=lambda error: _edit_refused(patient, form, error))
    if not form.is_submitted():
        open_on(form, form.values())
    return render_template("patients/form.html", form=form, patient=patient, merge=None)


def _edit_refused(patient, form, error):
    """A conflict shows both versions of each field changed on both sides, with a choice (409); any
    other refusal, its field."""
    if isinstance(error, EditConflict):
        reopen(form, error)
        form.version.data, form.version.raw_data = error.version, None
        return render_template("patients/form.html", form=form, patient=patient,
                               merge=conflict_view(form, error)), 409
    show_at_fields(form, error)
    return render_template("patients/form.html", form=form, patient=patient, merge=None)


def _clinical_patient(patient_id):
    patient = db.get_or_404(Patient, patient_id)
    if not can_edit_clinical_background(current_user, patient):
        abort(403)
    return patient


def _back_to_chart(patient_id, message, section):
    flash(message, "success")
    return redirect(url_for("patients.detail", patient_id=patient_id, _anchor=section))


def _chart_refused(patient_id, name, form, default):
    """The chart again with the refused form `name` as typed and each problem next to its field."""
    def refused(error):
        show_at_fields(form, error, default)
        return _chart(patient_id, 400, **{name: form})

    return refused


@bp.route("/<int:patient_id>/weights", methods=["POST"])
@requires(can_edit_clinical_background)
def add_weight(patient_id):
    patient = _clinical_patient(patient_id)
    form = WeightForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, weight=form)
    return attempt(lambda: service.add_weight(patient, kg=form.kg.data, measured_on=form.measured_on.data,
                                              actor=current_actor(), now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, f"Weight {form.kg.data} kg recorded.", "weights"),
                   refused=_chart_refused(patient_id, "weight", form, "kg"))


@bp.route("/<int:patient_id>/medications", methods=["POST"])
@requires(can_edit_clinical_background)
def add_medication(patient_id):
    patient = _clinical_patient(patient_id)
    form = MedicationForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, medication=form)
    return attempt(lambda: service.add_medication(patient, name=form.name.data, med_class=form.med_class.data,
                                                  started_on=form.started_on.data, stopped_on=form.stopped_on.data,
                                                  actor=current_actor(), now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, f"{form.name.data} added to the medications.",
                                                 "medications"),
                   refused=_chart_refused(patient_id, "medication", form, "name"))


@bp.route("/<int:patient_id>/medications/<int:medication_id>/stop", methods=["POST"])
@requires(can_edit_clinical_background)
def stop_medication(patient_id, medication_id):
    patient = _clinical_patient(patient_id)
    medication = child_or_404(PatientMedication, medication_id, patient_id=patient.id)
    form = StopMedicationForm.for_medication(medication)
    if not form.validate_on_submit():
        return _chart(patient_id, 400, stop={medication.id: form})

    def refused(error):
        show_at_fields(form, error, "stopped_on")
        return _chart(patient_id, 400, stop={medication.id: form})

    return attempt(lambda: service.stop_medication(medication, stopped_on=form.stopped_on.data,
                                                   actor=current_actor(), now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, f"{medication.name} marked as stopped.", "medications"),
                   refused=refused)


@bp.route("/<int:patient_id>/contraindications", methods=["POST"])
@requires(can_edit_clinical_background)
def add_contraindication(patient_id):
    patient = _clinical_patient(patient_id)
    form = ContraindicationForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, contraindication=form)
    return attempt(lambda: service.add_contraindication(patient, kind=form.kind.data, detail=form.detail.data,
                                                        noted_on=form.noted_on.data, actor=current_actor(),
                                                        now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, "Contraindication recorded.", "alerts"),
                   refused=_chart_refused(patient_id, "contraindication", form, "kind"))


@bp.route("/<int:patient_id>/consent", methods=["POST"])
@requires(can_edit_clinical_background)
def record_consent(patient_id):
    patient = _clinical_patient(patient_id)
    form = ConsentForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, consent=form)
    return attempt(lambda: service.record_consent(patient, consent_on=form.consent_on.data,
                                                  form_version=form.form_version.data, actor=current_actor(),
                                                  now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, "Consent recorded.", "consent"),
                   refused=_chart_refused(patient_id, "consent", form, "consent_on"))


#: Where each kind of entry is on the chart, and what the confirmation calls it.
ENTRY_SECTIONS = {"weights": ("weights", "weight"), "medications": ("medications", "medication"),
                  "contraindications": ("alerts", "contraindication")}


@bp.route("/<int:patient_id>/<any(weights, medications, contraindications):kind>/<int:entry_id>/entered-in-error",
          methods=["POST"])
@requires(can_mark_entered_in_error)
def entry_in_error(patient_id, kind, entry_id):
    entry = child_or_404(corrections.PATIENT_ENTRIES[kind], entry_id, patient_id=patient_id)
    if not can_mark_entered_in_error(current_user, entry):
        abort(403)
    form = EnteredInErrorForm.for_entry(kind, entry)
    if not form.validate_on_submit():
        return _chart(patient_id, 400, in_error={kind: {entry.id: form}})

    def refused(error):
        show_at_fields(form, error)
        return _chart(patient_id, 400, in_error={kind: {entry.id: form}})

    section, name = ENTRY_SECTIONS[kind]
    return attempt(lambda: corrections.mark_entry_in_error(entry, reason=form.reason.data, actor=current_actor(),
                                                           now=utcnow()),
                   done=lambda _: _back_to_chart(patient_id, f"The {name} is marked entered in error.", section),
                   refused=refused)
