"""The policy form, built from the ClinicalPolicy thresholds and the severity table, so a new
threshold or finding code appears by itself."""
from dataclasses import fields

from wtforms import DecimalField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import HiddenInput

from opsmgr.core.edits import ChoiceFields
from opsmgr.core.forms import BaseForm
from opsmgr.patients.forms import finite
from opsmgr.rules.policy import FIELD_HELP, THRESHOLDS, ClinicalPolicy
from opsmgr.rules.severities import SEVERITY_RULES, severity_for, severity_problems

#: Pairs that must stay ordered: (lower, higher, may they be equal?, message).
ORDERED = (
    ("bp_soft_systolic", "bp_hard_systolic", False, "The review threshold must be below the blocking one."),
    ("bp_soft_diastolic", "bp_hard_diastolic", False, "The review threshold must be below the blocking one."),
    ("hr_low", "hr_high", False, "The low heart rate must be below the high one."),
    ("dose_mg_per_kg_low", "dose_mg_per_kg_high", False, "The low dose must be below the high dose."),
    ("dose_mg_per_kg_high", "dose_mg_per_kg_ceiling", True, "The review dose must not exceed the ceiling."),
    ("rems_remind_day", "rems_due_days", True, "The reminder must come on or before the day the form is due."),
    ("rems_due_days", "rems_overdue_day", False, "The form becomes overdue after the day it is due."),
    ("reminder_second_hours", "reminder_first_hours", True,
     "The first reminder comes before the second: give it more hours (0 switches a reminder off)."),
)
#: Integer settings whose range is narrower than the default 0-1440: (lowest, highest).
RANGES = {
    "quiet_hours_start": (0, 23), "quiet_hours_end": (0, 23),
    "booster_rise_points": (1, 27), "booster_phq9_at_or_above": (1, 27),
    "phq9_first_request_days": (1, 365), "phq9_then_every_days": (1, 365), "phq9_weekly_weeks": (1, 52),
    "rems_due_days": (1, 60), "rems_remind_day": (0, 60), "rems_overdue_day": (1, 60),
    "followup_misses_before_escalation": (1, 20),
}
POLICY_FIELDS = THRESHOLDS
FLOAT_FIELDS = frozenset(f.name for f in fields(ClinicalPolicy) if f.type in (float, "float"))
#: Finding code -> its form field (a locked code has one too, so a crafted choice is refused at it).
SEVERITY_FIELDS = {code: f"severity_{code.lower()}" for code in SEVERITY_RULES}


class PolicyFormBase(ChoiceFields, BaseForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    note = StringField("What changed and why", validators=[InputRequired(), Length(max=300)])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for low, high, may_equal, message in ORDERED:
            a, b = self[low].data, self[high].data
            if a is None or b is None or self[low].errors or self[high].errors:
                continue
            if a > b or (a == b and not may_equal):
                self[high].errors.append(message)
                valid = False
        for problem in severity_problems(self.severities()):
            self[SEVERITY_FIELDS[problem.field]].errors.append(problem.message)
            valid = False
        return valid

    def severities(self):
        """{code: chosen severity value} for every code (a field left out of the request keeps its value)."""
        return {code: self[name].data for code, name in SEVERITY_FIELDS.items()}

    def values(self):
        """The thresholds as the policy's types, and the severities."""
        values = {name: float(self[name].data) if name in FLOAT_FIELDS else self[name].data for name in THRESHOLDS}
        return {**values, "severities": self.severities()}


def initial_data(policy, version):
    """The form's data for a policy: every threshold, every code's severity, and the version it is based on."""
    thresholds = {name: getattr(policy, name) for name in THRESHOLDS}
    severities = {name: severity_for(code, policy).value for code, name in SEVERITY_FIELDS.items()}
    return {**thresholds, **severities, "version": version}


def _field(name, kind):
    label, unit, source = FIELD_HELP[name]
    text = f"{label} ({unit})"
    if kind is float:
        return DecimalField(text, places=3, description=source,
                            validators=[InputRequired(), finite, NumberRange(min=0, max=5)])
    low, high = RANGES.get(name, (0, 1440))
    return IntegerField(text, description=source, validators=[InputRequired(), NumberRange(min=low, max=high)])


def _severity_field(rule):
    """A select of the severities the rules allow for the code; the choice is checked in `validate`."""
    return SelectField(rule.description, description=rule.source, validate_choice=False,
                       choices=[SelectChoice(severity.value, severity.label) for severity in rule.choices])


def _build():
    attrs = {name: _field(name, float if name in FLOAT_FIELDS else int) for name in THRESHOLDS}
    attrs.update({SEVERITY_FIELDS[code]: _severity_field(rule) for code, rule in SEVERITY_RULES.items()})
    return type("PolicyForm", (PolicyFormBase,), attrs)


PolicyForm = _build()
