"""Break the glass; restrict a patient and name the care team; mark an event reviewed."""
from wtforms import PasswordField, RadioField, SelectChoice, SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.validators import InputRequired, Length

from opsmgr.core.forms import BaseForm
from opsmgr.rules.break_glass import REASONS


class BreakGlassForm(BaseForm):
    reason = RadioField("Why do you need this record?",
                        choices=[SelectChoice(code, words) for code, words in REASONS.items()],
                        validators=[InputRequired("Choose why you need this record.")])
    detail = TextAreaField("In your own words", validators=[InputRequired("Say in a few words why."),
                                                            Length(max=500)],
                           description="Kept with the event; an admin reviews every break-glass.")
    password = PasswordField("Your password", validators=[InputRequired("Enter your password to break the glass.")])


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class RestrictionForm(BaseForm):
    restricted = RadioField("Record", choices=[SelectChoice("yes", "Restricted: only the care team sees it"),
                                               SelectChoice("no", "Not restricted")],
                            validators=[InputRequired("Choose whether the record is restricted.")])
    care_team = CheckboxesField("Care team", coerce=int, validate_choice=True,
                                description="Staff who see the whole record. Others see the name only.")
    reason = StringField("Reason for the change", validators=[InputRequired("Give the reason for the change."),
                                                              Length(max=300)])


class ReviewForm(BaseForm):
    """A button: the event is reviewed."""


class MrnLookupForm(BaseForm):
    class Meta:
        csrf = False

    mrn = StringField("MRN", validators=[InputRequired("Enter the patient's MRN."), Length(max=32)])
