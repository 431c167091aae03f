"""Clinic set-up forms: chairs, opening hours, settings, protocol edits."""
import re
from decimal import Decimal

from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from opsmgr.core.edits import ChoiceFields, OpenedFields
from opsmgr.core.forms import BaseForm

#: Esketamine nasal spray comes in 28 mg devices: one, two or three per session (Spravato label).
ESKETAMINE_DOSES = [SelectChoice("28", "28 mg (1 device)"), SelectChoice("56", "56 mg (2 devices)"),
                    SelectChoice("84", "84 mg (3 devices)")]

TIME_NEEDED = "Enter a time as HH:MM."
PHASE = re.compile(r"^(\d{1,2})\s*[x×*]\s*(\d{1,2})$", re.IGNORECASE)
PHASES_HELP = ('Weeks × sessions a week, e.g. "2x3" for 2 weeks at 3 a week; several phases separated by '
               'commas, e.g. "4x2, 4x1". The last phase repeats if more sessions are planned.')


def finite(form, field):
    """Refuse NaN and infinity before any range check compares them."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation("Enter a number, e.g. 0.5.")


class ChairForm(BaseForm):
    name = StringField("Name", validators=[DataRequired(message="Give the chair a name."), Length(min=1, max=60)])
    position = IntegerField("Position", validators=[Optional(), NumberRange(min=0, max=999)],
                            description="Chairs are listed by position, lowest first.")


class ChairUpdateForm(ChairForm):
    is_active = BooleanField("Active (can be booked)")

    def for_chair(self, chair):
        """Ids and labels of this chair's own, so one page can hold a form per chair."""
        for field in self:
            field.id = f"chair-{chair.id}-{field.name}"
            field.label.field_id = field.id
        self.name.label.text = f"Name of {chair.name}"
        self.position.label.text = f"Position of {chair.name}"
        self.is_active.label.text = f"{chair.name} is active (can be booked)"
        return self


class DayForm(Form):
    """One weekday's hours; a sub-form, so it carries no CSRF token of its own.

    Times are asked for on closed days too: they are kept, ready for when the day opens.
    """

    is_open = BooleanField("Open")
    opens_at = TimeField("Opens", validators=[InputRequired(message=TIME_NEEDED)], format="%H:%M")
    closes_at = TimeField("Closes", validators=[InputRequired(message=TIME_NEEDED)], format="%H:%M")

    def validate_closes_at(self, field):
        if self.opens_at.data is not None and field.data is not None and not self.opens_at.data < field.data:
            raise ValidationError("Closing time must be after opening time.")


class HoursForm(BaseForm):
    days = FieldList(FormField(DayForm), min_entries=7, max_entries=7)

    def label_days(self, names):
        """Give every row's fields the weekday in their label, so each input is named on its own."""
        for entry, name in zip(self.days, names, strict=True):
            entry.form.is_open.label.text = f"{name}: open"
            entry.form.opens_at.label.text = f"{name} opens"
            entry.form.closes_at.label.text = f"{name} closes"
        return self


class SettingsForm(OpenedFields, BaseForm):
    turnover_minutes = IntegerField("Chair turnover (minutes)", validators=[
        InputRequired(message="Enter the minutes between two sessions on a chair."), NumberRange(min=0, max=120)],
        description="Time to clean and reset a chair between two sessions; 0–120.")
    ical_patient_names = BooleanField("Show patient names in staff calendar feeds",
                                      description="Off by default: feeds then show initials and the chair only.")

    def values(self):
        return {"turnover_minutes": self.turnover_minutes.data, "ical_patient_names": self.ical_patient_names.data}


def parse_phases(text):
    """'4x2, 4x1' -> [{"weeks": 4, "per_week": 2}, {"weeks": 4, "per_week": 1}]; ValueError if malformed."""
    phases = []
    for part in (text or "").split(","):
        match = PHASE.match(part.strip())
        if not match:
            raise ValueError(f'"{part.strip()[:20]}" is not weeks x sessions a week. {PHASES_HELP}')
        weeks, per_week = int(match.group(1)), int(match.group(2))
        if not 1 <= weeks <= 52:
            raise ValueError("Each phase lasts 1 to 52 weeks.")
        if not 1 <= per_week <= 7:
            raise ValueError("Each phase has 1 to 7 sessions a week.")
        phases.append({"weeks": weeks, "per_week": per_week})
    if len(phases) > 6:
        raise ValueError("Use at most 6 phases.")
    return phases


def _optional_days(label, top, description=""):
    return IntegerField(label, validators=[Optional(), NumberRange(min=1, max=top)], description=description)


def _minutes(label, low, top, description=""):
    return IntegerField(label, validators=[InputRequired(message="Enter the minutes."), NumberRange(min=low, max=top)],
                        description=description)


class ProtocolForm(ChoiceFields, BaseForm):
    """A protocol edit; the dose field shown depends on the route (IV per kg, esketamine fixed)."""

    name = StringField("Name", validators=[DataRequired(message="Give the protocol a name."), Length(max=120)])
    planned_count = IntegerField("Planned sessions", validators=[
        InputRequired(message="Enter the number of sessions."), NumberRange(min=1, max=52)])
    phases = StringField("Rhythm", validators=[DataRequired(message="Enter the rhythm, e.g. 2x3.")],
                         description=PHASES_HELP)
    max_span_days = _optional_days("Longest series (days)", 365, "Warn when a series runs longer. Empty: no limit.")
    max_gap_days = _optional_days("Longest gap between sessions (days)", 90,
                                  "Warn when two sessions are further apart. Empty: no limit.")
    dose_mg_per_kg = DecimalField("Dose (mg/kg)", places=3, validators=[
        InputRequired(message="Enter the dose in mg/kg."), finite,
        NumberRange(min=Decimal("0.05"), max=Decimal("2.0"), message="The dose must be between 0.05 and 2.0 mg/kg.")])
    dose_mg = SelectField("Dose", choices=ESKETAMINE_DOSES, coerce=int)
    min_infusion_minutes = _minutes("Minimum infusion time (minutes)", 0, 240)
    chair_minutes = _minutes("Chair time (minutes)", 15, 480, "How long the chair is held: dosing, observation "
                                                              "and recovery; 15–480.")
    observation_minutes = _minutes("Observation (minutes)", 0, 480)
    review_week = _optional_days("Physician review in week", 52, "Empty: no scheduled review.")
    reevaluate_after_days = _optional_days("Re-evaluate after (days)", 365,
                                           "Days after the last session; used for boosters. Empty: none.")
    notes = TextAreaField("Notes", validators=[Length(max=2000)], render_kw={"rows": 4})

    def __init__(self, *args, route, **kwargs):
        super().__init__(*args, **kwargs)
        self.route = route
        del self[("dose_mg" if route == "iv" else "dose_mg_per_kg")]

    def validate_phases(self, field):
        try:
            field.parsed = parse_phases(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_chair_minutes(self, field):
        needed = (self.min_infusion_minutes.data or 0) + (self.observation_minutes.data or 0)
        if field.data is not None and field.data < needed:
            raise ValidationError(f"The chair must be held at least as long as the minimum infusion plus "
                                  f"observation ({needed} minutes).")

    def values(self):
        """The validated input as protocol fields."""
        return {
            "name": self.name.data, "planned_count": self.planned_count.data, "phases": self.phases.parsed,
            "max_span_days": self.max_span_days.data, "max_gap_days": self.max_gap_days.data,
            "dose_mg_per_kg": self.dose_mg_per_kg.data.quantize(Decimal("0.001")) if self.route == "iv" else None,
            "dose_mg": self.dose_mg.data if self.route != "iv" else None,
            "min_infusion_minutes": self.min_infusion_minutes.data, "chair_minutes": self.chair_minutes.data,
            "observation_minutes": self.observation_minutes.data, "review_week": self.review_week.data,
            "reevaluate_after_days": self.reevaluate_after_days.data, "notes": self.notes.data,
        }


class ClosureForm(BaseForm):
    """A holiday closure: a date and what staff see for it."""

    closed_on = DateField("Date", validators=[DataRequired(message="Enter a valid date.")])
    label = StringField("What it is", description="Shown on the schedule, e.g. Christmas Day.", validators=[
        DataRequired(message="Say what the closure is, e.g. Christmas Day."), Length(max=80)])
