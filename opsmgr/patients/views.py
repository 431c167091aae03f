"""Patient list, registration, chart and record edits."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.patients import service
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
)
from opsmgr.patients.models import Patient, PatientMedication
from opsmgr.permissions import (
    can_edit_clinical_background,
    can_edit_demographics,
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
                           pages=max(1, -(-total // PAGE_SIZE)))
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

        def refused(error):
            show_at_fields(form, error)
            return render_template("patients/form.html", form=form, patient=None, conflict=None)

        return attempt(lambda: service.register_patient(form.values(), actor=current_actor(), now=utcnow()),
                       done=registered, refused=refused)
    return render_template("patients/form.html", form=form, patient=None, conflict=None)


@bp.route("/<int:patient_id>")
@requires(can_view_patients)
def detail(patient_id):
    return _chart(patient_id)


def _chart(patient_id, status=200, **submitted):
    """The chart, with any just-submitted form in place of a blank one (to show its errors)."""
    # Decided by role before loading: what a coordinator may not see is never read from the database.
    clinical = can_view_clinical_background(current_user)
    chart = service.open_chart(patient_id, clinical=clinical, actor=current_actor(), now=utcnow(),
                               today=clinic_today())
    if chart is None:
        abort(404)
    forms = _chart_forms(chart.patient, submitted) if clinical else {}
    html = render_template("patients/detail.html", chart=chart, patient=chart.patient, clinical=clinical,
                           forms=forms)
    db.session.commit()
    return html, status


def _chart_forms(patient, submitted):
    forms = {"weight": WeightForm(formdata=None), "medication": MedicationForm(formdata=None),
             "contraindication": ContraindicationForm(formdata=None), "consent": ConsentForm(formdata=None)}
    forms["stop"] = {medication.id: StopMedicationForm.for_medication(medication, formdata=None)
                     for medication in patient.medications if medication.stopped_on is None}
    forms["stop"].update(submitted.pop("stop", {}))
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
        def saved(changes):
            flash("Changes saved." if changes else "Nothing was changed.", "success" if changes else "info")
            return redirect(url_for("patients.detail", patient_id=patient.id))

        return attempt(lambda: service.update_patient(patient, form.values(), expected_version=form.version.data,
                                                      allowed_fields=fields, actor=current_actor(), now=utcnow()),
                       done=saved, refused=lambda error: _edit_refused(patient, form, error))
    return render_template("patients/form.html", form=form, patient=patient, conflict=None)


def _edit_refused(patient, form, error):
    """A stale edit shows the saved record beside what was typed (409); any other refusal, its field."""
    if isinstance(error, service.StaleEdit):
        conflict = {"message": str(error), "rows": form.rebase(patient)}
        return render_template("patients/form.html", form=form, patient=patient, conflict=conflict), 409
    show_at_fields(form, error)
    return render_template("patients/form.html", form=form, patient=patient, conflict=None)


def _clinical_patient(patient_id):
    patient = db.get_or_404(Patient, patient_id)
    if not can_edit_clinical_background(current_user, patient):
        abort(403)
    return patient


def _back_to_chart(patient_id, message, section):
    flash(message, "success")
    return redirect(url_for("patients.detail", patient_id=patient_id, _anchor=section))


@bp.route("/<int:patient_id>/weights", methods=["POST"])
@requires(can_edit_clinical_background)
def add_weight(patient_id):
    patient = _clinical_patient(patient_id)
    form = WeightForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, weight=form)
    service.add_weight(patient, kg=form.kg.data, measured_on=form.measured_on.data, actor=current_actor(),
                       now=utcnow())
    db.session.commit()
    return _back_to_chart(patient_id, f"Weight {form.kg.data} kg recorded.", "weights")


@bp.route("/<int:patient_id>/medications", methods=["POST"])
@requires(can_edit_clinical_background)
def add_medication(patient_id):
    patient = _clinical_patient(patient_id)
    form = MedicationForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, medication=form)
    service.add_medication(patient, name=form.name.data, med_class=form.med_class.data,
                           started_on=form.started_on.data, stopped_on=form.stopped_on.data,
                           actor=current_actor(), now=utcnow())
    db.session.commit()
    return _back_to_chart(patient_id, f"{form.name.data} added to the medications.", "medications")


@bp.route("/<int:patient_id>/medications/<int:medication_id>/stop", methods=["POST"])
@requires(can_edit_clinical_background)
def stop_medication(patient_id, medication_id):
    patient = _clinical_patient(patient_id)
    medication = db.get_or_404(PatientMedication, medication_id)
    if medication.patient_id != patient.id:
        abort(404)
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
    service.add_contraindication(patient, kind=form.kind.data, detail=form.detail.data,
                                 noted_on=form.noted_on.data, actor=current_actor(), now=utcnow())
    db.session.commit()
    return _back_to_chart(patient_id, "Contraindication recorded.", "alerts")


@bp.route("/<int:patient_id>/consent", methods=["POST"])
@requires(can_edit_clinical_background)
def record_consent(patient_id):
    patient = _clinical_patient(patient_id)
    form = ConsentForm()
    if not form.validate_on_submit():
        return _chart(patient_id, 400, consent=form)
    service.record_consent(patient, consent_on=form.consent_on.data, form_version=form.form_version.data,
                           actor=current_actor(), now=utcnow())
    db.session.commit()
    return _back_to_chart(patient_id, "Consent recorded.", "consent")
