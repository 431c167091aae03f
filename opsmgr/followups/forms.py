"""Worklist forms: filters, done (outcome, a PHQ-9 by phone, the REMS submission), not reached, escalate."""
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from opsmgr.checklist.forms import DIFFICULTY, FREQUENCY, PHQ9_QUESTIONS, AnswerField, _frequency_choices
from opsmgr.core.forms import BaseForm
from opsmgr.followups.worklist import KIND_LABELS


class FilterForm(BaseForm):
    class Meta:
        csrf = False  # a GET form: it changes nothing

    kind = SelectField("Kind", choices=[SelectChoice("", "All kinds"),
                                        *(SelectChoice(k, label) for k, label in KIND_LABELS.items())],
                       validators=[Optional()])
    due_by = DateField("Due by", validators=[Optional()], description="Items due on or before this day.")
    patient = StringField("Patient", validators=[Optional(), Length(max=80)],
                          description="Name or MRN.")


class DoneForm(BaseForm):
    version = HiddenField(validators=[InputRequired()])
    outcome = TextAreaField("What happened", validators=[InputRequired(message="Say what happened."),
                                                        Length(max=2000)], render_kw={"rows": 3},
                            description="For example: reached, doing well, no new symptoms; or what was arranged.")
    phq9_difficulty = AnswerField(
        "If any problems: how difficult have they made it to do your work, take care of things at home, or get "
        "along with other people?", choices=_frequency_choices(DIFFICULTY), coerce=int)
    rems_submitted_on = DateField("REMS form submitted on", validators=[Optional()])
    rems_method = SelectField("Submitted by", choices=[
        SelectChoice("", "Choose…"), SelectChoice("portal", "REMS portal"), SelectChoice("fax", "Fax")],
                              validators=[Optional()])

    def phq9_items(self):
        """The nine answers, None when none was given; a partial PHQ-9 is refused by the score rules."""
        items = [self[f"phq9_{number}"].data for number in range(1, len(PHQ9_QUESTIONS) + 1)]
        return None if all(item is None for item in items) else items


for _number, _question in enumerate(PHQ9_QUESTIONS, 1):
    setattr(DoneForm, f"phq9_{_number}", AnswerField(f"{_number}. {_question}", choices=_frequency_choices(FREQUENCY),
                                                     coerce=int))


class NotReachedForm(BaseForm):
    version = HiddenField(validators=[InputRequired()])


class EscalateForm(BaseForm):
    version = HiddenField(validators=[InputRequired()])
    note = TextAreaField("Why a physician should look at this", validators=[InputRequired(
        message="Say why a physician should look at this."), Length(max=500)], render_kw={"rows": 2})
