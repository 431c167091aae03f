"""The series summary's signing form: the physician's paragraph and their password."""
from wtforms import PasswordField, TextAreaField

from opsmgr.core.forms import BaseForm
from opsmgr.rules.reports import SUMMARY_MAX_CHARACTERS
from opsmgr.twofactor.forms import signing_code_field


class SeriesSignForm(BaseForm):
    # Length is judged by rules.reports.summary_problems, so the message is the same on every path.
    summary = TextAreaField("Physician's summary",
                            description="Course, response and the plan; printed on the summary as you type it.",
                            render_kw={"rows": 6, "maxlength": SUMMARY_MAX_CHARACTERS})
    password = PasswordField("Your password", render_kw={"autocomplete": "current-password"})
    totp_code = signing_code_field()
