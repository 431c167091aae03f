"""Booking, moving and status forms."""
from wtforms import BooleanField, DateField, HiddenField, RadioField, SelectChoice, SelectField, StringField, TimeField
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
    """Book one session: the patient is found by search first (patient_id), then one of their series chosen."""

    patient_id = HiddenField()
    series_id = RadioField("Series", coerce=int, validators=[DataRequired(message="Choose the series to book for.")])
    chair_id = SelectField("Chair", coerce=int, validators=[DataRequired()])
    day = DateField("Date", validators=[DataRequired(message="Enter a valid date.")])
    start_time = TimeField("Start time", validators=[DataRequired(message="Enter a time.")])
    same_day_reason = _same_day_reason()

    def set_series(self, series_list, preselect=False):
        """The chosen patient's open series, each told apart by its protocol, status, bookings and order date;
        `preselect` chooses the only one (on the form shown, never on a post)."""
        self.series_id.choices = [SelectChoice(s.id, s.label) for s in series_list]
        if preselect and len(series_list) == 1 and self.series_id.data is None:
            self.series_id.data = series_list[0].id

    @property
    def chosen_patient_id(self):
        """The patient chosen from the search, if the hidden field holds a whole number."""
        value = (self.patient_id.data or "").strip()
        return int(value) if value.isdigit() and len(value) < 10 else None


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

    day = DateField("Day", validators=[Optional()])
    #: The week's Monday, from older links: its day is shown.
    start = DateField("Week of", validators=[Optional()])

    @property
    def chosen(self):
        """The day asked for (None: today); a date that does not parse is ignored (its error is shown)."""
        return (self.day.data if not self.day.errors else None) or (self.start.data if not self.start.errors else None)
