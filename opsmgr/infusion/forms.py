"""Forms at the chair: shape and plausible ranges only; the gates decide in the service.

Several forms share the infusion page, so each has a prefix (start-…, vitals-…) and no token
field of its own: the app-wide CSRFProtect checks every POST.
"""
from datetime import datetime
from decimal import Decimal

from wtforms import (
    DateField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation, ValidationError
from wtforms.widgets import HiddenInput

from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.forms import BaseForm, yes_no
from opsmgr.patients.forms import finite, one_decimal, parsed
from opsmgr.rules.monitoring import ACK_ACTIONS
from opsmgr.twofactor.forms import signing_code_field

MOAAS_CHOICES = [SelectChoice("", "Choose…")] + [
    SelectChoice(str(score), f"{score} – {label}") for score, label in (
        (5, "responds readily to name in a normal tone"), (4, "lethargic response to name"),
        (3, "responds only after name is called loudly or repeatedly"), (2, "responds only after mild shaking"),
        (1, "responds only after a painful stimulus"), (0, "no response to a painful stimulus"))]
YES_NO = [SelectChoice("", "Choose…"), SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


def three_decimals(form, field):
    if field.data is not None and field.data.as_tuple().exponent < -3:
        raise ValidationError("Use at most three decimal places.")


def _number(low, high):
    return [InputRequired(), parsed, NumberRange(min=low, max=high)]


def _score(value):
    return None if value in (None, "") else int(value)


def required_for_iv(form, field):
    """The infusion time is needed for an IV dose; an esketamine dose has none."""
    if field.raw_data and field.raw_data[0].strip():
        return
    field.errors[:] = []
    raise StopValidation("Enter the infusion time in minutes." if form.route == "iv" else None)


class ChairForm(BaseForm):
    class Meta:
        csrf = False


#: The hidden field that says which dose a page showed: the physician's order id, 0 for the series dose.
def _shown_order():
    return IntegerField(widget=HiddenInput(), default=0, validators=[Optional(), parsed, NumberRange(min=0)])


class StartDoseForm(ChairForm):
    """The start: the dose is the one in force (shown above the form), so only its time is entered here."""

    infusion_minutes = IntegerField("Infusion time (minutes)", validators=[required_for_iv, parsed,
                                                                           NumberRange(min=1, max=240)],
                                    render_kw={"inputmode": "numeric"})
    dose_order = _shown_order()

    @classmethod
    def for_session(cls, visit, *, infusion_minutes=None, **kwargs):
        """The start form with the protocol's infusion time unless another is given."""
        series = visit.series
        form = cls(prefix="start", infusion_minutes=infusion_minutes or series.protocol.min_infusion_minutes or None,
                   **kwargs)
        form.route = series.protocol.route
        return form

    def proposal(self, route):
        """The proposed infusion time; None for esketamine, whose dose is one instant."""
        return self.infusion_minutes.data if route == "iv" else None


class DoseOrderForm(ChairForm):
    """A physician's order of this session's dose: mg/kg (IV) or mg (esketamine), why, and their password."""

    dose = DecimalField("New dose", places=3, validators=[InputRequired(), parsed, finite, three_decimals],
                        render_kw={"inputmode": "decimal"})
    reason = TextAreaField("Reason for the change", validators=[InputRequired(), Length(max=300)],
                           render_kw={"rows": 2}, description="The nurse giving the dose reads this.")
    password = PasswordField("Your password", validators=[InputRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})

    @classmethod
    def for_session(cls, visit, **kwargs):
        form = cls(prefix="order", **kwargs)
        form.route = visit.series.protocol.route
        iv = form.route == "iv"
        form.dose.label.text = "New dose (mg/kg)" if iv else "New dose (mg)"
        form.dose.description = ("mg per kg of today's weight, for this session only." if iv else
                                 "Whole 28 mg devices: 28, 56 or 84 mg, for this session only.")
        form.dose.render_kw = {**form.dose.render_kw, "step": "0.001" if iv else "28"}
        return form

    def validate_dose(self, field):
        """Plausibility only (a typo); whether the dose may be given is the policy's (rules.dosing)."""
        low, high = (Decimal("0.01"), Decimal("2")) if self.route == "iv" else (Decimal("1"), Decimal("500"))
        if field.data is not None and not low <= field.data <= high:
            unit = "mg/kg" if self.route == "iv" else "mg"
            raise ValidationError(f"Enter a dose between {low} and {high} {unit}.")


class OverrideForm(ChairForm):
    """A physician's override of one finding; the hidden fields carry what the page showed: the dose
    in force, the infusion time and the MOAA/S."""

    password = PasswordField("Your password", validators=[InputRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    totp_code = signing_code_field()
    reason = TextAreaField("Reason", validators=[InputRequired(), Length(max=500)], render_kw={"rows": 2})
    dose_order = _shown_order()
    infusion_minutes = IntegerField(widget=HiddenInput(), validators=[Optional(), parsed, NumberRange(min=1, max=240)])
    moaas = IntegerField(widget=HiddenInput(), validators=[Optional(), parsed, NumberRange(min=0, max=5)])

    @classmethod
    def for_finding(cls, gate, code, **kwargs):
        return cls(prefix=f"override-{gate}-{code}", **kwargs)


class ControlledSubstanceForm(ChairForm):
    product = StringField("Product", validators=[InputRequired(), Length(max=120)],
                          description="For example: ketamine 50 mg/mL, 10 mL vial.")
    lot = StringField("Lot number", validators=[InputRequired(), Length(max=60)])
    expiry_on = DateField("Expiry date", validators=[InputRequired()])
    drawn_mg = DecimalField("Drawn (mg)", validators=[InputRequired(), parsed, finite, NumberRange(min=0, max=5000),
                                                      one_decimal], render_kw={"step": "0.1", "inputmode": "decimal"})
    given_mg = DecimalField("Given (mg)", validators=[InputRequired(), parsed, finite, NumberRange(min=0, max=5000),
                                                      one_decimal], render_kw={"step": "0.1", "inputmode": "decimal"})
    wasted_mg = DecimalField("Wasted (mg)", validators=[InputRequired(), parsed, finite, NumberRange(min=0, max=5000),
                                                        one_decimal], render_kw={"step": "0.1", "inputmode": "decimal"},
                             description="Drawn must equal given plus wasted.")
    shortfall_reason = StringField("Why less than the dose was given", validators=[Length(max=300)],
                                   description="Only when less than the dose was given, for example an infusion "
                                               "stopped early. More than the dose cannot be recorded.")
    witness_username = StringField("Witness's username", validators=[InputRequired(), Length(max=64)],
                                   description="A second nurse or physician who saw the waste.",
                                   render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    witness_password = PasswordField("Witness's password", validators=[InputRequired(), Length(max=1024)],
                                     render_kw={"autocomplete": "off"})

    def values(self):
        return {name: self[name].data for name in ("product", "lot", "expiry_on", "drawn_mg", "given_mg",
                                                   "wasted_mg", "shortfall_reason", "witness_username",
                                                   "witness_password")}


class VitalsForm(ChairForm):
    """Plausibility ranges catch typos (a systolic of 15 or 400); values out of policy become alerts."""

    systolic = IntegerField("Systolic BP (mmHg)", validators=_number(50, 260), render_kw={"inputmode": "numeric"})
    diastolic = IntegerField("Diastolic BP (mmHg)", validators=_number(30, 160), render_kw={"inputmode": "numeric"})
    heart_rate = IntegerField("Heart rate (bpm)", validators=_number(20, 220), render_kw={"inputmode": "numeric"})
    spo2 = IntegerField("SpO2 (%)", validators=_number(50, 100), render_kw={"inputmode": "numeric"})
    moaas = SelectField("Sedation (MOAA/S)", choices=MOAAS_CHOICES, coerce=_score, validators=[InputRequired()],
                        invalid_value_message="Choose a score from 0 to 5.")
    taken_at = TimeField("Time taken", validators=[InputRequired()], description="Clinic time, today.")

    def validate_diastolic(self, field):
        if field.data is not None and self.systolic.data is not None and field.data >= self.systolic.data:
            raise ValidationError("The diastolic must be lower than the systolic.")

    def values(self):
        """The reading as the service takes it, with the time as UTC on today's clinic date."""
        zone = clinic_zone()
        day = utcnow().astimezone(zone).date()
        taken_at = datetime.combine(day, self.taken_at.data, tzinfo=zone)
        return {"systolic": self.systolic.data, "diastolic": self.diastolic.data, "heart_rate": self.heart_rate.data,
                "spo2": self.spo2.data, "moaas": self.moaas.data, "taken_at": taken_at}


class AcknowledgeForm(ChairForm):
    action = SelectField("Action taken", validators=[InputRequired()],
                         choices=[SelectChoice("", "Choose…")] + [SelectChoice(a, a.capitalize()) for a in ACK_ACTIONS],
                         description="Stop ends the infusion now.")
    note = TextAreaField("Note", validators=[InputRequired(), Length(max=2000)], render_kw={"rows": 2})
    drug_given = StringField("Drug given", validators=[Length(max=200)],
                             description="Name, dose and route, if any; leave blank if none.")

    @classmethod
    def for_alert(cls, alert, **kwargs):
        return cls(prefix=f"alert{alert.id}", **kwargs)


class ResumeForm(ChairForm):
    note = StringField("Note", validators=[Length(max=300)], description="Optional: for example, BP rechecked.")


class DischargeForm(ChairForm):
    moaas = SelectField("Mental status (MOAA/S)", choices=MOAAS_CHOICES, coerce=_score, validators=[InputRequired()],
                        invalid_value_message="Choose a score from 0 to 5.")
    escort_present = SelectField("Is the escort here to take the patient home? (Or the ride home arranged at the "
                                 "checklist.)", choices=YES_NO, coerce=yes_no,
                                 validators=[InputRequired()], invalid_value_message="Choose yes or no.")
    instructions_given = SelectField("Were the discharge instructions given?", choices=YES_NO, coerce=yes_no,
                                     validators=[InputRequired()], invalid_value_message="Choose yes or no.")
    condition = TextAreaField("Condition at discharge", validators=[InputRequired(), Length(max=300)],
                              render_kw={"rows": 2})

    def values(self):
        return {"moaas": self.moaas.data, "escort_present": self.escort_present.data,
                "instructions_given": self.instructions_given.data, "condition": self.condition.data}
