"""The reminder texts an admin edits: shape only; what a template may hold is messaging.templates'."""
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from opsmgr.core.edits import OpenedFields
from opsmgr.core.forms import BaseForm
from opsmgr.messaging.templates import PARTS


def unix_lines(value):
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


def _required(what):
    return DataRequired(message=f"Write the {what}, or choose Restore default.")


class MessageTemplatesForm(OpenedFields, BaseForm):
    # Twilio refuses a body over 1,600 characters.
    reminder_sms = TextAreaField("Text message (SMS)", filters=[unix_lines], render_kw={"rows": 5},
                                 validators=[_required("text message"), Length(max=1600)])
    reminder_email_subject = StringField("Email subject", validators=[_required("subject"), Length(max=200)])
    reminder_email_body = TextAreaField("Email body", filters=[unix_lines], render_kw={"rows": 12},
                                        validators=[_required("email"), Length(max=5000)])

    def texts(self):
        return {name: self[name].data for name in PARTS}
