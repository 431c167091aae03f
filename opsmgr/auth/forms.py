"""Login and password forms: shape and length only; the password rules live in rules/access.py."""
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from opsmgr.core.forms import BaseForm


class LoginForm(BaseForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


class ChangePasswordForm(BaseForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)],
                                     render_kw={"autocomplete": "current-password"})
    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "new-password"},
                             description="At least 12 characters. Long passphrases and any characters are welcome.")
    confirm = PasswordField("Repeat the new password",
                            validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
                            render_kw={"autocomplete": "new-password"})



def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _pin_field(label, *validators, **kwargs):
    return PasswordField(label, validators=[DataRequired(), Length(max=64), *validators], filters=[_strip],
                         render_kw={"autocomplete": "off", "inputmode": "numeric", "pattern": "[0-9]*"}, **kwargs)


class UnlockForm(BaseForm):
    """The locked screen's PIN; `next` is the page to return to (checked with safe_next)."""

    pin = _pin_field("PIN")
    next = HiddenField()


class PinForm(BaseForm):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    pin = _pin_field("New PIN", description="4 to 8 digits. It only unlocks your own screen on a chair tablet.")
    confirm = _pin_field("Repeat the new PIN", EqualTo("pin", message="The two PINs differ."))
