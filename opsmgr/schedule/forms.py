"""Booking, moving and status forms."""
from wtforms import BooleanField, DateField, HiddenField, SelectChoice, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, Length, Optional

from opsmgr.core.forms import BaseForm


class _ChairChoice:
    def set_chairs(self, chairs):
        self.chair_id.choices = [SelectChoice(chair.id, chair.name) for chair in chairs]


class BookForm(_ChairChoice, BaseForm):
    series_id = SelectField("Patient and series", coerce=int, validators=[DataRequired()])
    chair_id = SelectField("Chair", coerce=int, validators=[DataRequired()])
    day = DateField("Date", validators=[DataRequired(message="Enter a valid date.")])
    start_time = TimeField("Start time", validators=[DataRequired(message="Enter a time.")])

    def set_series(self, series_list):
        self.series_id.choices = [
            SelectChoice(s.id, f"{s.patient_label} — {s.protocol_label} ({s.status})") for s in series_list
        ]


class MoveForm(_ChairChoice, BaseForm):
    chair_id = SelectField("Chair", coerce=int, validators=[DataRequired()])
    day = DateField("New date", validators=[DataRequired(message="Enter a valid date.")])
    start_time = TimeField("New start time", validators=[DataRequired(message="Enter a time.")])
    shift_rest = BooleanField("Shift the later sessions of this series by the same number of days")


class StatusForm(BaseForm):
    target = HiddenField(validators=[DataRequired()])
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])


class WeekForm(BaseForm):
    class Meta:
        csrf = False

    start = DateField("Week of", validators=[Optional()])
