"""The physician's series order and the stop form."""
from wtforms import DateField, DecimalField, IntegerField, SelectChoice, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from opsmgr.core.forms import BaseForm
from opsmgr.patients.forms import finite
from opsmgr.patients.models import Indication


class SeriesOrderForm(BaseForm):
    protocol_id = SelectField("Protocol", coerce=int, validators=[DataRequired()])
    indication = SelectField("Indication", choices=[SelectChoice(v, label) for v, label in Indication.choices()],
                             validators=[DataRequired()])
    dose_mg_per_kg = DecimalField("Dose (mg/kg)", places=3,
                                  validators=[Optional(), finite, NumberRange(min=0.05, max=2)],
                                  description="IV protocols. Leave empty to use the protocol's dose.")
    dose_mg = IntegerField("Dose (mg)", validators=[Optional(), NumberRange(min=28, max=84)],
                           description="Esketamine: 28, 56 or 84 mg. Leave empty to use the protocol's dose.")
    planned_count = IntegerField("Planned sessions", validators=[Optional(), NumberRange(min=1, max=52)],
                                 description="Leave empty to use the protocol's count.")
    start_on = DateField("Start date", validators=[DataRequired(message="Enter a valid date.")])
    preferred_time = TimeField("Preferred start time", validators=[DataRequired(message="Enter a time.")],
                               description="Clinic local time; kept across daylight-saving changes.")
    reevaluate_on = DateField("Re-evaluation date", validators=[Optional()],
                              description="For boosters: when the physician reviews the patient again.")

    def set_protocols(self, protocols):
        self.protocol_id.choices = [SelectChoice(p.id, p.label) for p in protocols]

    def validate_dose_mg(self, field):
        if field.data is not None and field.data not in (28, 56, 84):
            raise ValidationError("Esketamine comes in 28 mg devices: 28, 56 or 84 mg.")


class StopSeriesForm(BaseForm):
    reason = StringField("Reason for stopping", validators=[DataRequired(), Length(max=300)])
