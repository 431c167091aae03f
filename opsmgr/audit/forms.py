"""The audit report's filter form (a GET form: no state changes, so no CSRF token)."""
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from opsmgr.audit.service import SORTABLE
from opsmgr.core.forms import BaseForm, DateRange


class AuditFilterForm(DateRange, BaseForm):
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
