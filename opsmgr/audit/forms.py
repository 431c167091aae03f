"""The audit report's filter form (a GET form: no state changes, so no CSRF token)."""
from datetime import date

from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from opsmgr.audit.service import SORTABLE
from opsmgr.core.forms import BaseForm


class AuditFilterForm(BaseForm):
    class Meta:
        csrf = False

    username = StringField("Staff member", validators=[Optional(), Length(max=120)],
                           description="A username, or part of a name: Dana finds Dana Ortiz")
    mrn = StringField("Patient MRN", validators=[Optional(), Length(max=32)])
    #: Internal patient number: only from an address (the form asks for the MRN).
    patient_id = IntegerField("Patient number", validators=[Optional(), NumberRange(min=1, max=2_147_483_647)])
    action = StringField("Action", validators=[Optional()], description="For example login.failed")
    outcome = SelectField("Outcome", choices=[SelectChoice("", "Any"), SelectChoice("ok", "Allowed"),
                                   SelectChoice("denied", "Denied")],
                          validators=[Optional()])
    start = DateField("From (clinic date)", validators=[Optional()])
    end = DateField("To (clinic date, inclusive)", validators=[Optional()])
    sort = SelectField("Sort by", choices=[SelectChoice(key, key.capitalize()) for key in SORTABLE], default="time")
    direction = SelectField("Order", choices=[SelectChoice("desc", "Newest / highest first"),
                                     SelectChoice("asc", "Oldest / lowest first")],
                            default="desc")
    page = IntegerField("Page", validators=[Optional(), NumberRange(min=1, max=100000)], default=1)

    def validate_start(self, field):
        _check_range(field)

    def validate_end(self, field):
        _check_range(field)
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date is before the start date.")


EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)


def _check_range(field):
    if field.data and not EARLIEST <= field.data <= LATEST:
        raise ValidationError(f"Enter a date between {EARLIEST.year} and {LATEST.year}.")
