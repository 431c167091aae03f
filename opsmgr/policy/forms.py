"""The policy form, built from the ClinicalPolicy fields so a new threshold appears by itself."""
from dataclasses import fields

from wtforms import DecimalField, IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import HiddenInput

from opsmgr.core.forms import BaseForm
from opsmgr.rules.policy import FIELD_HELP, ClinicalPolicy

#: Pairs that must stay ordered: (lower, higher, may they be equal?, message).
ORDERED = (
    ("bp_soft_systolic", "bp_hard_systolic", False, "The review threshold must be below the blocking one."),
    ("bp_soft_diastolic", "bp_hard_diastolic", False, "The review threshold must be below the blocking one."),
    ("hr_low", "hr_high", False, "The low heart rate must be below the high one."),
    ("dose_mg_per_kg_low", "dose_mg_per_kg_high", False, "The low dose must be below the high dose."),
    ("dose_mg_per_kg_high", "dose_mg_per_kg_ceiling", True, "The review dose must not exceed the ceiling."),
)


class PolicyFormBase(BaseForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    note = StringField("What changed and why", validators=[InputRequired(), Length(max=300)])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for low, high, may_equal, message in ORDERED:
            a, b = self[low].data, self[high].data
            if a is None or b is None:
                continue
            if a > b or (a == b and not may_equal):
                self[high].errors.append(message)
                valid = False
        return valid


def _field(name, kind):
    label, unit, source = FIELD_HELP[name]
    text = f"{label} ({unit})"
    if kind is float:
        return DecimalField(text, places=3, description=source,
                            validators=[InputRequired(), NumberRange(min=0, max=5)])
    return IntegerField(text, description=source, validators=[InputRequired(), NumberRange(min=0, max=1440)])


def _build():
    attrs = {f.name: _field(f.name, float if f.type in (float, "float") else int) for f in fields(ClinicalPolicy)}
    return type("PolicyForm", (PolicyFormBase,), attrs)


PolicyForm = _build()
POLICY_FIELDS = tuple(f.name for f in fields(ClinicalPolicy))
