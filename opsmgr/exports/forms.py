"""The admin's CSV export form and the MRN lookup of a patient's disclosures (GET forms: they change
nothing, so no CSRF token)."""
from datetime import date

from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from opsmgr.core.forms import BaseForm, DateRange
from opsmgr.exports.csv_exports import KINDS

KIND_LABELS = {"patients": "Patients seen (a session in the range)", "sessions": "Sessions", "scores":
               "PHQ-9 and GAD-7 scores", "vitals": "Vital signs"}


class CsvExportForm(DateRange, BaseForm):
    EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)

    class Meta:
        csrf = False

    kind = SelectField("What to export", choices=[SelectChoice(kind, KIND_LABELS[kind]) for kind in KINDS],
                       validators=[InputRequired()])
    start = DateField("From (clinic date)", validators=[InputRequired(message="Enter the first date.")])
    end = DateField("To (clinic date, inclusive)", validators=[InputRequired(message="Enter the last date.")])


class DisclosureLookupForm(BaseForm):
    class Meta:
        csrf = False

    mrn = StringField("Patient MRN", validators=[InputRequired(message="Enter the patient's MRN."), Length(max=32)])
