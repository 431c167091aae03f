"""Two-factor forms: shape and length only; codes are checked in twofactor.service."""
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from opsmgr.auth.models import Role
from opsmgr.core.forms import BaseForm

CODE_LABEL = "Code from your authenticator app"
_CODE_INPUT = {"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def signing_code_field():
    """The code field beside the password on a signing form; only shown (and required by the service)
    when the signer has two-factor on."""
    return StringField(CODE_LABEL, validators=[Optional(), Length(max=32)], filters=[_strip],
                       render_kw={**_CODE_INPUT, "inputmode": "numeric"})


class SignInCodeForm(BaseForm):
    code = StringField(CODE_LABEL, validators=[DataRequired(), Length(max=32)], filters=[_strip],
                       render_kw=_CODE_INPUT,
                       description="Six digits, or one of your recovery codes if you do not have your phone.")


def _app_code_field():
    """A required code from the app (set-up, new recovery codes)."""
    return StringField(CODE_LABEL, validators=[DataRequired(), Length(max=32)], filters=[_strip],
                       render_kw={**_CODE_INPUT, "inputmode": "numeric"},
                       description="The six digits your app shows for opsmgr now.")


def _own_password_field():
    return PasswordField("Your password", validators=[DataRequired(), Length(max=1024)],
                         render_kw={"autocomplete": "current-password"})


class ConfirmForm(BaseForm):
    code = _app_code_field()


class TurnOffForm(BaseForm):
    password = _own_password_field()
    code = StringField("One of your recovery codes", validators=[DataRequired(), Length(max=32)], filters=[_strip],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})


class RenewCodesForm(BaseForm):
    password = _own_password_field()
    code = _app_code_field()


class PolicyForm(BaseForm):
    nurse = BooleanField(Role.NURSE.label)
    coordinator = BooleanField(Role.COORDINATOR.label)
    physician = BooleanField(Role.PHYSICIAN.label)
    admin = BooleanField(Role.ADMIN.label)

    def required(self):
        return {role.value for role in Role if self[role.value].data}
