"""Note forms: lengths and ranges only; what a complete note needs is decided in opsmgr.rules.notes."""
from datetime import datetime

from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from opsmgr.core.clock import clinic_zone
from opsmgr.core.edits import MERGE_FIELDS, OpenedFields
from opsmgr.core.forms import BaseForm, yes_no
from opsmgr.notes.models import AE_KINDS, AE_OUTCOMES, AE_SEVERITIES, LONG_TEXT, SHORT_TEXT
from opsmgr.twofactor.forms import signing_code_field

YES_NO = [SelectChoice("", "Not recorded"), SelectChoice("yes", "Yes"), SelectChoice("no", "No")]
AE_KIND_LABELS = {
    "nausea": "Nausea", "vomiting": "Vomiting", "anxiety_agitation": "Anxiety or agitation",
    "hypertension": "Hypertension", "headache": "Headache", "dizziness": "Dizziness", "dysphoria": "Dysphoria",
    "emergence_reaction": "Emergence reaction", "other": "Other",
}
AE_OUTCOME_LABELS = {"resolved": "Resolved", "resolving": "Resolving", "ongoing_at_discharge": "Ongoing at discharge",
                     "referred": "Referred on"}


def _long(label, description=None, rows=3):
    return TextAreaField(label, validators=[Length(max=LONG_TEXT)], description=description,
                         render_kw={"rows": rows, "maxlength": LONG_TEXT})


def _short(label, description=None):
    return StringField(label, validators=[Length(max=SHORT_TEXT)], description=description,
                       render_kw={"maxlength": SHORT_TEXT})


def _rating(label, description):
    in_range = NumberRange(min=0, max=10, message="Enter a whole number from 0 to 10.")
    return IntegerField(label, validators=[Optional(), in_range], description=description,
                        render_kw={"inputmode": "numeric", "min": 0, "max": 10})


class NoteForm(OpenedFields, BaseForm):
    """Every field of the note; ``version`` is the note version the user started from, ``opened`` the
    values (as fingerprints) it was opened with, so a save merges with a colleague's."""

    version = HiddenField()
    mindset = _long("Mindset on arrival")
    intention = _long("Intention, in the patient's own words", "Carried over from today's checklist.")
    expectations = _long("Expectations")
    worries = _long("Worries")
    music = _long("Music or playlist", rows=2)
    eye_mask = SelectField("Eye mask worn", choices=YES_NO, coerce=yes_no,
                           invalid_value_message="Choose yes, no or not recorded.")
    lighting = _short("Lighting")
    room = _short("Room")
    support_person = _long("Support person or therapist present", rows=2)
    setting_changes = _long("Changes to the setting during the session", rows=2)
    dissociation_clinician = _rating("Dissociation observed by the clinician (0–10)", "0 none, 10 the most intense.")
    dissociation_patient = _rating("Dissociation reported by the patient (0–10)", "As the patient rates it.")
    emotional_tone = _long("Emotional tone")
    themes = _long("Themes")
    perceptual_effects = _long("Perceptual effects")
    quotes = _long("Notable quotes")
    ending = _long("How the session ended")
    post_session_state = _long("Post-session state")
    integration_plan = _long("Integration plan", "Follow-up, therapy, next appointments.")
    narrative = _long("Narrative", rows=8)

    def data_fields(self):
        return [name for name in self._fields if name not in {"version", "csrf_token", *MERGE_FIELDS}]

    def values(self):
        return {name: self[name].data for name in self.data_fields()}


FIELD_GROUPS = (
    ("set", "Set", ("mindset", "intention", "expectations", "worries")),
    ("setting", "Setting", ("music", "eye_mask", "lighting", "room", "support_person", "setting_changes")),
    ("experience", "Experience", ("dissociation_clinician", "dissociation_patient", "emotional_tone", "themes",
                                  "perceptual_effects", "quotes", "ending")),
    ("after", "After the session", ("post_session_state", "integration_plan", "narrative")),
)


def _choices(labels, values):
    return [SelectChoice("", "Choose…")] + [SelectChoice(value, labels.get(value, value.title())) for value in values]


class AdverseEventForm(BaseForm):
    class Meta:
        csrf = False

    kind = SelectField("Kind", choices=_choices(AE_KIND_LABELS, AE_KINDS), validators=[InputRequired()])
    other_kind = StringField("If other, what", validators=[Length(max=120)], render_kw={"maxlength": 120})
    onset_time = TimeField("Onset (clinic time)", validators=[InputRequired()])
    severity = SelectField("Severity", choices=_choices({}, AE_SEVERITIES), validators=[InputRequired()])
    intervention = _long("Intervention", rows=2)
    drug_given = StringField("Drug given (name, dose, route)", validators=[Length(max=200)],
                             render_kw={"maxlength": 200})
    outcome = SelectField("Outcome", choices=_choices(AE_OUTCOME_LABELS, AE_OUTCOMES), validators=[InputRequired()])
    alert_id = SelectField("Linked in-chair alert", choices=[SelectChoice("", "None")], validate_choice=True)

    def validate_other_kind(self, field):
        if self.kind.data == "other" and not field.data:
            raise ValidationError("Name the adverse event.")

    def with_alerts(self, alerts):
        self.alert_id.choices = [SelectChoice("", "None")] + [
            SelectChoice(str(alert.id), f"{alert.raised_at.astimezone(clinic_zone()):%H:%M} {alert.message}")
            for alert in alerts]
        return self

    def values(self, day):
        return {"kind": self.kind.data, "other_kind": self.other_kind.data if self.kind.data == "other" else "",
                "onset_at": datetime.combine(day, self.onset_time.data, tzinfo=clinic_zone()),
                "severity": self.severity.data, "intervention": self.intervention.data,
                "drug_given": self.drug_given.data, "outcome": self.outcome.data,
                "alert_id": int(self.alert_id.data) if self.alert_id.data else None}


class CompleteForm(BaseForm):
    version = HiddenField()


class SignForm(BaseForm):
    version = HiddenField()
    password = PasswordField("Your password", validators=[InputRequired(message="Enter your password to sign.")],
                             render_kw={"autocomplete": "current-password"})
    totp_code = signing_code_field()


class AddendumForm(BaseForm):
    reason = StringField("Reason for the addendum", validators=[InputRequired(message="Give the reason."),
                                                                Length(max=SHORT_TEXT)],
                         render_kw={"maxlength": SHORT_TEXT})
    body = TextAreaField("Addendum", validators=[InputRequired(message="Write the addendum."), Length(max=LONG_TEXT)],
                         render_kw={"rows": 5, "maxlength": LONG_TEXT})
    event_on = DateField("Date of what it describes (late entry)", validators=[Optional()],
                         description="Leave empty unless this records something that happened earlier.")
    event_time = TimeField("Time of what it describes", validators=[Optional()])
    password = PasswordField("Your password", validators=[InputRequired(message="Enter your password to sign.")],
                             render_kw={"autocomplete": "current-password"})

    def validate_event_time(self, field):
        if (field.data is None) != (self.event_on.data is None):
            raise ValidationError("Give both the date and the time of a late entry, or neither.")

    def event_at(self):
        if self.event_on.data is None or self.event_time.data is None:
            return None
        return datetime.combine(self.event_on.data, self.event_time.data, tzinfo=clinic_zone())
