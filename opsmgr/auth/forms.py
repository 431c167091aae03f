"""Login and password forms: shape and length only; the password rules live in rules/access.py."""
from wtforms import PasswordField, StringField
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
