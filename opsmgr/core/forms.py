"""The base form every form builds on."""
import re

from flask_wtf import FlaskForm

#: C0 control characters other than tab and newlines: never meaningful in a form, and
#: PostgreSQL cannot store NUL at all.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value):
    """Text without surrounding space or control characters; a field left out of the request is ''."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    return CONTROL_CHARACTERS.sub("", value).strip()


def yes_no(value):
    """A yes/no select's value as True, False, or None when not answered ("")."""
    if value is None or isinstance(value, bool):
        return value
    answers = {"": None, "yes": True, "no": False}
    if value not in answers:
        raise ValueError(value)
    return answers[value]


class BaseForm(FlaskForm):
    """A form that strips surrounding whitespace and control characters from text input."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            filters = list(unbound_field.kwargs.get("filters", []))
            if unbound_field.field_class.__name__ in {"StringField", "TextAreaField", "EmailField"}:
                filters.append(clean_text)
            return unbound_field.bind(form=form, filters=filters, **options)
