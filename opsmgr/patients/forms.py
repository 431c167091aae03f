"""Patient forms: search, registration and edit, and the clinical background entries on the chart."""
from datetime import date

from wtforms import (
    DateField,
    DecimalField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, StopValidation, ValidationError
from wtforms.widgets import HiddenInput

from opsmgr.core import contact
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.edits import MERGE_FIELDS, OpenedFields
from opsmgr.core.forms import BaseForm, clean_text, yes_no
from opsmgr.patients.models import Contraindication, Indication, MedicationClass, ReminderChannel, SexAtBirth
from opsmgr.patients.service import reminder_problems

EARLIEST = date(1900, 1, 1)


def clinic_today():
    """Today's date where the clinic is."""
    return utcnow().astimezone(clinic_zone()).date()


def _choices(enum, blank=None):
    choices = [SelectChoice("", blank)] if blank else []
    return choices + [SelectChoice(member.value, member.label) for member in enum]


#: Display labels for stored codes, for templates: labels.indication["trd"].
LABELS = {
    "indication": {member.value: member.label for member in Indication},
    "sex_at_birth": {member.value: member.label for member in SexAtBirth},
    "reminder_channel": {member.value: member.label for member in ReminderChannel},
    "med_class": {member.value: member.label for member in MedicationClass},
    "contraindication": {member.value: member.label for member in Contraindication},
}


def past_date(form, field):
    """A date from 1900 up to today (clinic time)."""
    if field.data is None:
        return
    if field.data > clinic_today():
        raise ValidationError("This date is in the future.")
    if field.data < EARLIEST:
        raise ValidationError("Enter a date from 1900 onwards.")


def birth_date(form, field):
    if field.data is not None and field.data > clinic_today():
        raise ValidationError("The date of birth cannot be in the future.")
    if field.data is not None and field.data < EARLIEST:
        raise ValidationError("Enter a date of birth from 1900 onwards.")


def parsed(form, field):
    """Stop at input that could not be read as a number: its own message says why, a range check would not."""
    if field.process_errors:
        raise StopValidation()


def finite(form, field):
    # Decimal accepts "NaN" and "Infinity", which cannot be compared with a range.
    if field.data is not None and not field.data.is_finite():
        raise StopValidation("Enter a number, for example 82.5.")


def one_decimal(form, field):
    if field.data is not None and field.data.as_tuple().exponent < -1:
        raise ValidationError("Use at most one decimal place.")


#: At most this many records can be confirmed as different people at once.
MAX_DIFFERENT_FROM = 50


def different_from_ids(raw):
    """The patient ids of "This is a different person" ('12,40'); nothing at all unless every one is an id."""
    parts = (raw or "").split(",")
    if not raw or len(parts) > MAX_DIFFERENT_FROM or not all(part.isascii() and part.isdigit() for part in parts):
        return ()
    return tuple(int(part) for part in parts)


#: A phone number's characters only: the checklist's escort phone on the day, not the patient's record.
PHONE = Regexp(r"^[0-9+()./ -]{7,40}$", message="Use digits, spaces and + ( ) - . only (7 to 40 characters).")


def phone_number(form, field):
    """A phone number valid in the clinic's region (or with a country code), kept in E.164."""
    if field.data:
        try:
            field.data = contact.e164(field.data, contact.clinic_region())
        except contact.ContactError as error:
            raise StopValidation(str(error)) from error


def email_address(form, field):
    """An email address, kept in its normalised form; the domain's mail servers are not looked up."""
    if field.data:
        try:
            field.data = contact.normal_email(field.data)
        except contact.ContactError as error:
            raise StopValidation(str(error)) from error


class PhoneField(StringField):
    """A phone number as people write it; the data is E.164 once valid. Shows what was typed, or the stored
    number in the clinic's format."""

    def __init__(self, label=None, validators=(), **kwargs):
        render_kw = {"type": "tel", "autocomplete": "off", **kwargs.pop("render_kw", {})}
        super().__init__(label, [Optional(), Length(max=40), phone_number, *validators],
                         filters=[clean_text, *kwargs.pop("filters", ())], render_kw=render_kw, **kwargs)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return self.shown(self.data) if self.data else ""

    @staticmethod
    def shown(value):
        """A stored number as staff read it (also in an edit conflict)."""
        return contact.phone_filter(value)


class SearchForm(BaseForm):
    """The patient search (a GET form: no state changes, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField("Name or MRN", validators=[Optional(), Length(max=100)],
                    description="The start of any words of the name, in any order (ramirez mar), or the whole MRN.")
    dob = DateField("Date of birth", validators=[Optional(), birth_date])
    page = IntegerField("Page", validators=[Optional(), parsed, NumberRange(min=1, max=100000)])


class DemographicsForm(BaseForm):
    """Identity and contact: what every member of the care team may enter."""

    mrn = StringField("MRN", validators=[
        InputRequired(), Regexp(r"^[A-Za-z0-9-]{3,32}$", message="Use 3 to 32 letters, digits or dashes.")],
        description="The clinic's medical record number.",
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})
    legal_name = StringField("Legal name", validators=[InputRequired(), Length(max=120)],
                             render_kw={"autocomplete": "off"})
    preferred_name = StringField("Preferred name", validators=[Length(max=120)], render_kw={"autocomplete": "off"})
    date_of_birth = DateField("Date of birth", validators=[InputRequired(), birth_date])
    sex_at_birth = SelectField("Sex at birth", choices=_choices(SexAtBirth, "Choose…"), validators=[InputRequired()])
    phone = PhoneField("Phone", description="A number from another country starts with + and its country code.")
    email = EmailField("Email", validators=[Optional(), Length(max=254), email_address],
                       render_kw={"autocomplete": "off", "spellcheck": "false"})
    reminder_channel = SelectField("Appointment reminders by", choices=_choices(ReminderChannel), default="none",
                                   description="SMS needs a number that can take texts; email, an address.")
    contact_consent_on = DateField("Agreed to reminders on", validators=[Optional(), past_date],
                                   description="Needed for email or SMS reminders.")
    escort_name = StringField("Escort's name", validators=[Length(max=120)],
                              description="The adult who takes the patient home after each session.")
    escort_phone = PhoneField("Escort's phone")

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        if self.reminder_channel.errors:
            return False
        # A refused number or address is not known (None): the channel says nothing more about it, and a
        # field already refused gets no second message.
        problems = reminder_problems(
            self.reminder_channel.data, phone=None if self.phone.errors else self.phone.data or "",
            email=None if self.email.errors else self.email.data or "", consent_on=self.contact_consent_on.data)
        for problem in problems:
            if not self[problem.field].errors:
                self[problem.field].errors.append(problem.message)
        return valid and not problems

    def values(self):
        """The patient fields this form carries, as the service takes them."""
        return {field.name: field.data for field in self if field.name not in {"csrf_token", "version", *MERGE_FIELDS}}


class RegistrationForm(DemographicsForm):
    """Registration by a coordinator: identity, contact, and from the referral whether pregnancy is possible
    and the indication. These two are clinical background: afterwards only clinicians see or change them."""

    pregnancy_possible = SelectField(
        "Could the patient become pregnant?", coerce=yes_no, validators=[InputRequired()],
        choices=[SelectChoice("", "Choose…"), SelectChoice("no", "No"), SelectChoice("yes", "Yes")],
        invalid_value_message="Choose yes or no.",
        description="If yes, the pre-infusion checklist asks for pregnancy status or a test.")
    indication = SelectField("Indication", choices=_choices(Indication, "Choose…"), validators=[InputRequired()])


class ClinicalRegistrationForm(RegistrationForm):
    """Registration by a clinician: also the clinical background."""

    indication_detail = StringField("Indication detail", validators=[Length(max=200)])
    failed_trials = IntegerField("Failed antidepressant trials", default=0,
                                 validators=[InputRequired(), parsed, NumberRange(min=0, max=50)],
                                 description="Adequate trials that did not help; two or more is treatment-resistant.")
    allergies = TextAreaField("Allergies", validators=[Length(max=500)],
                              description="Drug and other allergies with the reaction, or NKDA.")


class DemographicsEditForm(OpenedFields, DemographicsForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class ClinicalEditForm(OpenedFields, ClinicalRegistrationForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class WeightForm(BaseForm):
    kg = DecimalField("Weight (kg)", validators=[InputRequired(), parsed, finite, NumberRange(min=25, max=350),
                                                 one_decimal],
                      description="25 to 350 kg, at most one decimal place.", render_kw={"step": "0.1"})
    measured_on = DateField("Measured on", validators=[InputRequired(), past_date], default=clinic_today)


class MedicationForm(BaseForm):
    name = StringField("Medication", validators=[InputRequired(), Length(max=120)])
    med_class = SelectField("Class", choices=_choices(MedicationClass, "Choose…"), validators=[InputRequired()])
    started_on = DateField("Started on", validators=[InputRequired(), past_date])
    stopped_on = DateField("Stopped on", validators=[Optional(), past_date], description="Leave blank if current.")

    def validate_stopped_on(self, field):
        if self.started_on.data and field.data and field.data < self.started_on.data:
            raise ValidationError("The stop date is before the start date.")


class StopMedicationForm(BaseForm):
    """One per medication on the chart, told apart by a prefix (med<id>-stopped_on)."""

    class Meta:
        # A prefix would rename the token field too; the app-wide CSRFProtect checks every POST anyway.
        csrf = False

    stopped_on = DateField("Stopped on", validators=[InputRequired(), past_date], default=clinic_today)

    @classmethod
    def for_medication(cls, medication, **kwargs):
        form = cls(prefix=f"med{medication.id}", **kwargs)
        form.stopped_on.label.text = f"{medication.name} stopped on"
        return form


class ContraindicationForm(BaseForm):
    kind = SelectField("Contraindication", choices=_choices(Contraindication, "Choose…"),
                       validators=[InputRequired()])
    detail = StringField("Detail", validators=[Length(max=200)])
    noted_on = DateField("Noted on", validators=[InputRequired(), past_date], default=clinic_today)


class ConsentForm(BaseForm):
    consent_on = DateField("Consent signed on", validators=[InputRequired(), past_date], default=clinic_today)
    form_version = StringField("Consent form version", validators=[InputRequired(), Length(max=40)],
                               description="As printed on the signed form.")
