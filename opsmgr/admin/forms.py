"""Staff account forms."""
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from opsmgr.auth.models import Role
from opsmgr.core.forms import BaseForm

ROLE_CHOICES = [SelectChoice(role.value, role.label) for role in Role]


class StaffCreateForm(BaseForm):
    username = StringField("Username", validators=[
        DataRequired(), Length(min=2, max=64),
        Regexp(r"^[A-Za-z0-9._-]+$", message="Use letters, digits, dots, dashes or underscores."),
    ], render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    full_name = StringField("Full name", validators=[DataRequired(), Length(max=120)])
    credentials = StringField("Credentials", validators=[Length(max=40)],
                              description="Printed beside a signature, e.g. MD, RN, NP.")
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])
    password = PasswordField("Temporary password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "new-password"},
                             description="At least 12 characters. The person must change it at first sign-in.")
    confirm = PasswordField("Repeat the temporary password", validators=[
        DataRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})


class RoleForm(BaseForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])


class ResetPasswordForm(BaseForm):
    password = PasswordField("New temporary password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "new-password"},
                             description="At least 12 characters. The person must change it at next sign-in.")
    confirm = PasswordField("Repeat the temporary password", validators=[
        DataRequired(), EqualTo("password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"})


class ConfirmForm(BaseForm):
    """A button-only form: carries the CSRF token."""


class TabletForm(BaseForm):
    name = StringField("Device name", validators=[DataRequired(), Length(max=80)],
                       description="What staff call this tablet, e.g. Chair 3 tablet.")
