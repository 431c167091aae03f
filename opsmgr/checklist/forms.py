"""The pre-session checklist form and the physician's override form.

Nothing here is pre-filled from anywhere but the checklist's own saved answers: every radio
group starts unanswered, and the time fields start empty. Ranges here only catch typos; what a
value means clinically is the rules engine's business.
"""
from datetime import UTC, timedelta
from types import SimpleNamespace

from wtforms import (
    DateTimeLocalField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import HiddenInput

from opsmgr.checklist.labels import ANSWER_LABELS, PREGNANCY, shown
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.forms import BaseForm, clean_text
from opsmgr.patients.forms import PHONE, finite, one_decimal, parsed
from opsmgr.patients.models import MedicationClass
from opsmgr.rules.findings import is_explained
from opsmgr.twofactor.forms import signing_code_field

#: How far back a typed time may lie: further is a typo in the date (vitals go stale in minutes).
OLDEST_TIME = timedelta(days=7)
#: Blank medication rows offered under the ones already entered.
BLANK_MEDICATION_ROWS = 2
MAX_MEDICATION_ROWS = 20

PHQ9_QUESTIONS = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed, or the opposite: so fidgety or "
    "restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead, or of hurting yourself in some way",
)
GAD7_QUESTIONS = (
    "Feeling nervous, anxious, or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid, as if something awful might happen",
)
FREQUENCY = ("Not at all", "Several days", "More than half the days", "Nearly every day")
DIFFICULTY = ("Not difficult at all", "Somewhat difficult", "Very difficult", "Extremely difficult")

YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]
SUICIDE_RISK = [SelectChoice(value, value.capitalize()) for value in ("negative", "low", "moderate", "high")]
WILLINGNESS = [SelectChoice("yes", "Yes: wants this treatment today, for themselves"),
               SelectChoice("unsure", "Unsure"), SelectChoice("no", "No")]
#: The answer for a patient with no escort today: another safe ride home, which a physician must accept.
NO_ESCORT = SelectChoice("none", "No escort today (describe the safe ride home below)")
NO_ESCORT_HINT = "With no escort today, the dose waits until a physician accepts the ride home described."
MEDICATION_ANSWER = [SelectChoice("none", "No changes since the last session"),
                     SelectChoice("changes", "Yes: listed below")]
MEDICATION_CLASSES = [SelectChoice("", "Choose…")] + [SelectChoice(m.value, m.label) for m in MedicationClass]
CHANGES = [SelectChoice("", "Choose…"), SelectChoice("started", "Started"), SelectChoice("stopped", "Stopped")]
YES_NO_QUESTIONS = ("new_diagnoses", "cardio_cerebrovascular_event", "psychosis_symptoms", "mania_symptoms",
                    "substance_use_in_window", "vascular_contraindication")


def yes_no(value):
    if value is None or isinstance(value, bool):
        return value
    if value not in ("yes", "no"):
        raise ValueError(value)
    return value == "yes"


def _frequency_choices(labels):
    return [SelectChoice(str(score), f"{score}: {label}") for score, label in enumerate(labels)]


class AnswerField(RadioField):
    """A radio group with no default that may stay unanswered (a partial save), never an unknown value."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("invalid_value_message", "Choose one of the answers.")
        kwargs.setdefault("invalid_choice_message", "Choose one of the answers.")
        super().__init__(label, validators or [Optional()], **kwargs)

    def pre_validate(self, form):
        if self.data is not None:
            super().pre_validate(form)


def _in_range(low, high, unit):
    unit = "%%" if unit == "%" else f" {unit}"  # NumberRange formats its message with %
    return NumberRange(min=low, max=high, message=f"Enter {low} to {high}{unit}; check for a typo.")


def _number(label, low, high, unit, **kwargs):
    return IntegerField(label, validators=[Optional(), parsed, _in_range(low, high, unit)],
                        render_kw={"inputmode": "numeric", "autocomplete": "off"}, **kwargs)


def _decimal(label, low, high, unit, **kwargs):
    return DecimalField(label, validators=[Optional(), parsed, finite, _in_range(low, high, unit), one_decimal],
                        render_kw={"inputmode": "decimal", "step": "0.1", "autocomplete": "off"}, **kwargs)


def recent_past(form, field):
    """A clinic-local time that has happened, and not days ago (a typo in the date)."""
    if field.data is None:
        return
    now = utcnow()
    if field.data.astimezone(UTC) > now:
        raise ValidationError("This time is in the future: enter when it actually happened.")
    if field.data.astimezone(UTC) < now - OLDEST_TIME:
        raise ValidationError("This time is more than 7 days ago: check the date.")


def _moment(label, description):
    return DateTimeLocalField(label, validators=[Optional(), recent_past], tz=clinic_zone,
                              format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], description=description,
                              invalid_value_message="Enter a date and time, for example 2026-11-26 09:45.")


class MedicationRow(Form):
    """One medication started or stopped since the last session (a row of the repeatable list)."""

    name = StringField("Medication", validators=[Length(max=120)], filters=[clean_text])
    med_class = SelectField("Class", choices=MEDICATION_CLASSES)
    change = SelectField("Started or stopped", choices=CHANGES)

    @property
    def is_blank(self):
        return not (self.name.data or self.med_class.data or self.change.data)

    def as_change(self):
        return {"name": self.name.data, "med_class": self.med_class.data, "change": self.change.data}


class ChecklistForm(BaseForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=0)])
    # Vitals
    systolic = _number("Systolic blood pressure (mmHg)", 50, 260, "mmHg")
    diastolic = _number("Diastolic blood pressure (mmHg)", 30, 160, "mmHg")
    heart_rate = _number("Heart rate (beats per minute)", 20, 220, "beats per minute")
    spo2 = _number("Oxygen saturation, SpO2 (%)", 50, 100, "%")
    temperature_c = _decimal("Temperature (°C)", 33, 42, "°C")
    respiratory_rate = _number("Respiratory rate (breaths per minute)", 4, 60, "breaths per minute")
    vitals_taken_at = _moment("Vitals taken at", "Clinic date and time. Not filled in for you: type when the "
                              "vitals were taken.")
    weight_kg = _decimal("Today's weight (kg)", 25, 350, "kg")
    # Contraindication recheck
    medication_answer = AnswerField("Medications started or stopped since the last session",
                                    choices=MEDICATION_ANSWER)
    medication_rows = FieldList(FormField(MedicationRow), max_entries=MAX_MEDICATION_ROWS)
    new_diagnoses = AnswerField("Any new diagnosis since the last session?", choices=YES_NO, coerce=yes_no)
    pregnancy_status = AnswerField("Pregnancy status today", choices=PREGNANCY)
    cardio_cerebrovascular_event = AnswerField("Any new heart problem or stroke event since the last session?",
                                               choices=YES_NO, coerce=yes_no)
    psychosis_symptoms = AnswerField("Any psychosis symptoms (hallucinations, delusions)?", choices=YES_NO,
                                     coerce=yes_no)
    mania_symptoms = AnswerField("Any mania symptoms?", choices=YES_NO, coerce=yes_no)
    substance_use_in_window = AnswerField("Alcohol or drug use in the last 24 hours?", choices=YES_NO,
                                          coerce=yes_no)
    vascular_contraindication = AnswerField(
        "Aneurysmal vascular disease, arteriovenous malformation or bleeding in the brain?", choices=YES_NO,
        coerce=yes_no)
    # Fasting
    last_solid_food_at = _moment("Last solid food", "Clinic date and time.")
    last_clear_liquid_at = _moment("Last clear liquid", "Clinic date and time.")
    # Escort
    escort_source = AnswerField("Who takes the patient home today?", choices=[])
    escort_name = StringField("Escort's name", validators=[Length(max=120)], render_kw={"autocomplete": "off"})
    escort_phone = StringField("Escort's phone", validators=[Optional(), PHONE],
                               render_kw={"autocomplete": "off", "type": "tel"})
    escort_arrangement = TextAreaField(
        "No escort today: how does the patient get home safely?", validators=[Length(max=300)],
        description="Only with “No escort today”. Who, how and when, for example: Medical transport booked, "
                    "Ride Co., pick-up 14:00. A physician must accept it before the dose.",
        render_kw={"rows": 2, "maxlength": 300})
    # Consent
    consent_reconfirmed = AnswerField("Consent reconfirmed with the patient today?", choices=YES_NO, coerce=yes_no)
    # PHQ-9 and GAD-7: phq9_1 … phq9_9, phq9_difficulty, gad7_1 … gad7_7 (added below)
    phq9_difficulty = AnswerField(
        "If any problems: how difficult have they made it to do your work, take care of things at home, or get "
        "along with other people?", choices=_frequency_choices(DIFFICULTY), coerce=int)
    # Suicide-risk screen and the patient's own voice
    suicide_risk = AnswerField("Suicide-risk screen outcome", choices=SUICIDE_RISK)
    willingness = AnswerField("Does the patient want this treatment today, for themselves?", choices=WILLINGNESS)
    intention = TextAreaField("The patient's intention for today, in their own words",
                              validators=[Length(max=2000)], render_kw={"rows": 3, "maxlength": 2000})

    @classmethod
    def for_session(cls, visit, response=None, **kwargs):
        """The form for this session's patient and route; on GET, filled from the saved answers only."""
        from_saved = "formdata" in kwargs and kwargs["formdata"] is None
        if from_saved:
            kwargs["data"] = initial_data(response, visit.patient)
        form = cls(**kwargs)
        patient = visit.patient
        if not patient.pregnancy_possible:
            del form.pregnancy_status
        if visit.series.protocol.route != "esketamine":
            del form.vascular_contraindication
        latest = next((weight for weight in patient.weights if not weight.is_entered_in_error), None)
        if latest is not None:
            form.weight_kg.description = (f"Last on the record: {latest.kg} kg on {latest.measured_on:%d %b %Y}. "
                                          "Weigh the patient today.")
        if usual_escort(patient):
            form.escort_source.choices = [
                SelectChoice("usual", f"The usual escort: {patient.escort_name}, {patient.escort_phone}"),
                SelectChoice("other", "Someone else (enter their name and phone)"), NO_ESCORT]
            form.escort_source.description = ("Confirm with the patient: the usual escort is not filled in for "
                                              f"you. {NO_ESCORT_HINT}")
        else:
            form.escort_source.choices = [SelectChoice("other", "An escort (enter their name and phone)"), NO_ESCORT]
            form.escort_source.description = NO_ESCORT_HINT
            form.escort_name.description = "The patient's record has no usual escort: ask who takes them home."
        if from_saved:
            for _ in range(BLANK_MEDICATION_ROWS):
                form.medication_rows.append_entry()
        return form

    def validate(self, extra_validators=None):
        checks = [super().validate(extra_validators), self._check_medications(), self._check_escort()]
        return all(checks)

    def _check_medications(self):
        filled = [row.form for row in self.medication_rows if not row.form.is_blank]
        valid = True
        for row in filled:
            for field in (row.name, row.med_class, row.change):
                if not field.data:
                    field.errors = [*field.errors, f"Enter the {field.label.text.lower()} too, or clear the row."]
                    valid = False
        answer = self.medication_answer
        if answer.data == "changes" and not filled:
            answer.errors = [*answer.errors, "List the change below, or choose “No changes”."]
            valid = False
        if answer.data == "none" and filled:
            answer.errors = [*answer.errors, "You chose “No changes” but listed a medication: choose “Yes” or "
                                             "clear the row."]
            valid = False
        if answer.data is None and filled:
            answer.errors = [*answer.errors, "Choose “Yes” to record the medications listed below."]
            valid = False
        return valid

    def _check_escort(self):
        source, typed = self.escort_source.data, bool(self.escort_name.data or self.escort_phone.data)
        arrangement = self.escort_arrangement
        problems = []
        if source == "usual" and typed:
            problems.append((self.escort_source, "You chose the usual escort and also typed one: clear the name "
                                                 "and phone, or choose “Someone else”."))
        if source == "none" and typed:
            problems.append((self.escort_source, "You chose “No escort today” and also typed an escort: clear the "
                                                 "name and phone, or choose the escort."))
        if source == "none" and not is_explained(arrangement.data):
            problems.append((arrangement, "Describe how the patient gets home (at least a few words), for "
                                          "example: Medical transport booked, Ride Co., pick-up 14:00."))
        if source != "none" and arrangement.data:
            problems.append((arrangement, "You described another way home: choose “No escort today”, or clear "
                                          "this description."))
        for field, message in problems:
            field.errors = [*field.errors, message]
        return not problems

    def values(self, patient):
        """The answers as ChecklistResponse columns (None where unanswered)."""
        values = {name: self[name].data for name in (
            "systolic", "diastolic", "heart_rate", "spo2", "temperature_c", "respiratory_rate", "weight_kg",
            "consent_reconfirmed", "phq9_difficulty", "suicide_risk", "willingness", "intention",
            "escort_name", "escort_phone", *YES_NO_QUESTIONS, "pregnancy_status") if name in self}
        for name in ("vitals_taken_at", "last_solid_food_at", "last_clear_liquid_at"):
            moment = self[name].data
            values[name] = None if moment is None else moment.astimezone(UTC)
        values["medication_changes"] = self._medication_changes()
        values["phq9_items"] = _items(self, "phq9", len(PHQ9_QUESTIONS))
        values["gad7_items"] = _items(self, "gad7", len(GAD7_QUESTIONS))
        if self.escort_source.data == "usual":
            values["escort_name"], values["escort_phone"] = patient.escort_name, patient.escort_phone
        values["escort_arrangement"] = self.escort_arrangement.data if self.escort_source.data == "none" else None
        return values

    def changes(self, response, patient):
        """Only the answers that differ from what is saved (all answered ones for a first save)."""
        values = self.values(patient)
        if response is None:
            return {name: value for name, value in values.items() if value is not None and value != ""}
        return {name: value for name, value in values.items() if _differs(value, getattr(response, name))}

    def _medication_changes(self):
        if self.medication_answer.data == "none":
            return []
        if self.medication_answer.data == "changes":
            return [row.form.as_change() for row in self.medication_rows if not row.form.is_blank]
        return None

    def rebase(self, response, patient):
        """After a conflict: point the form at the saved version; list (label, yours, saved) where they differ."""
        self.version.data, self.version.raw_data = response.version, [str(response.version)]
        return [(ANSWER_LABELS.get(name, name), shown(name, typed), shown(name, getattr(response, name)))
                for name, typed in self.values(patient).items() if _differs(typed, getattr(response, name))]


def _add_scale(form_class, scale, questions):
    """One radio group per item: phq9_1 … phq9_9, gad7_1 … gad7_7."""
    for number, question in enumerate(questions, 1):
        setattr(form_class, f"{scale}_{number}", AnswerField(f"{number}. {question}",
                                                             choices=_frequency_choices(FREQUENCY), coerce=int))


_add_scale(ChecklistForm, "phq9", PHQ9_QUESTIONS)
_add_scale(ChecklistForm, "gad7", GAD7_QUESTIONS)


def _items(form, scale, count):
    items = [form[f"{scale}_{number}"].data for number in range(1, count + 1)]
    return None if all(item is None for item in items) else items


def _differs(value, saved):
    if value in (None, "") and saved in (None, ""):
        return False
    return value != saved


def usual_escort(patient):
    """The escort on the patient's record, when it has both a name and a phone."""
    return bool(patient.escort_name and patient.escort_phone)


def initial_data(response, patient):
    """Form data from the saved answers (nothing from anywhere else)."""
    if response is None:
        return {"version": 0}
    data = {column: getattr(response, column) for column in (
        "systolic", "diastolic", "heart_rate", "spo2", "temperature_c", "respiratory_rate", "vitals_taken_at",
        "weight_kg", "pregnancy_status", "last_solid_food_at", "last_clear_liquid_at", "escort_name",
        "escort_phone", "consent_reconfirmed", "phq9_difficulty", "suicide_risk", "willingness", "intention",
        *YES_NO_QUESTIONS)}
    data["version"] = response.version
    changes = response.medication_changes
    data["medication_answer"] = None if changes is None else ("changes" if changes else "none")
    data["medication_rows"] = [SimpleNamespace(**change) for change in changes or []]
    for scale, items in (("phq9", response.phq9_items), ("gad7", response.gad7_items)):
        for number, item in enumerate(items or [], 1):
            data[f"{scale}_{number}"] = item
    if usual_escort(patient) and (response.escort_name, response.escort_phone) == (
            patient.escort_name, patient.escort_phone):
        data["escort_source"], data["escort_name"], data["escort_phone"] = "usual", "", ""
    elif usual_escort(patient) and response.escort_name:
        data["escort_source"] = "other"
    if response.escort_arrangement:
        data["escort_source"], data["escort_arrangement"] = "none", response.escort_arrangement
    return data


class OverrideForm(BaseForm):
    """A physician overrides one finding: the finding's code, their password again, and the reason."""

    code = StringField(widget=HiddenInput(), validators=[InputRequired(), Length(max=60)])
    password = PasswordField("Your password", validators=[InputRequired("Enter your password to sign the "
                                                                        "override.")])
    totp_code = signing_code_field()
    reason = TextAreaField("Reason for overriding", validators=[InputRequired("Give the reason for overriding."),
                                                                 Length(max=500)])
