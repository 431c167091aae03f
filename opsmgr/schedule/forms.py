"""Booking, moving and status forms."""
from wtforms import BooleanField, DateField, HiddenField, SelectChoice, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, Length, Optional

from opsmgr.core.forms import BaseForm

SAME_DAY_HELP = "Only for a second infusion the same day that you, as the physician, judge needed."


class _ChairChoice:
    def set_chairs(self, chairs):
        self.chair_id.choices = [SelectChoice(chair.id, chair.name) for chair in chairs]

    def for_user(self, may_override):
        """Only a physician overrides the one-infusion-a-day rule: the reason field is theirs alone."""
        if not may_override and "same_day_reason" in self:
            del self.same_day_reason
        return self

    @property
    def override_reason(self):
        return self.same_day_reason.data if "same_day_reason" in self else None


def _same_day_reason():
    return StringField("Reason for a second infusion that day", validators=[Optional(), Length(max=300)],
                       description=SAME_DAY_HELP)


class BookForm(_ChairChoice, BaseForm):
    series_id = SelectField("Patient and series", coerce=int, validators=[DataRequired()])
    chair_id = SelectField("Chair", coerce=int, validators=[DataRequired()])
    day = DateField("Date", validators=[DataRequired(message="Enter a valid date.")])
    start_time = TimeField("Start time", validators=[DataRequired(message="Enter a time.")])
    same_day_reason = _same_day_reason()

    def set_series(self, series_list):
        self.series_id.choices = [
            SelectChoice(s.id, f"{s.patient_label} — {s.protocol_label} ({s.status})") for s in series_list
        ]


class MoveForm(_ChairChoice, BaseForm):
    chair_id = SelectField("Chair", coerce=int, validators=[DataRequired()])
    day = DateField("New date", validators=[DataRequired(message="Enter a valid date.")])
    start_time = TimeField("New start time", validators=[DataRequired(message="Enter a time.")])
    shift_rest = BooleanField("Shift the later sessions of this series by the same number of days")
    same_day_reason = _same_day_reason()


class RecordPastForm(BookForm):
    """A session that already happened and was never booked, recorded by a physician."""

    reason = StringField("Why it is recorded after the fact", validators=[
        DataRequired(message="Say why this session is recorded after the fact."), Length(max=300)])


class StatusForm(BaseForm):
    target = HiddenField(validators=[DataRequired()])
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])


class WeekForm(BaseForm):
    class Meta:
        csrf = False

    start = DateField("Week of", validators=[Optional()])
