"""The base form every form builds on, and the date-range filter mixin."""
import re
from datetime import date

from flask_wtf import FlaskForm
from wtforms.validators import ValidationError

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


class DateRange:
    """Form mixin for a `start` and `end` date filter: each within [EARLIEST, LATEST] (a form narrows
    them), and the end not before the start. The form declares the two fields with its own labels."""

    EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)

    def validate_start(self, field):
        self._within(field)

    def validate_end(self, field):
        self._within(field)
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date is before the start date.")

    def _within(self, field):
        if field.data and not self.EARLIEST <= field.data <= self.LATEST:
            raise ValidationError(f"Enter a date between {self.EARLIEST.year} and {self.LATEST.year}.")


class BaseForm(FlaskForm):
    """A form that strips surrounding whitespace and control characters from text input."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            filters = list(unbound_field.kwargs.get("filters", []))
            if unbound_field.field_class.__name__ in {"StringField", "TextAreaField", "EmailField"}:
                filters.append(clean_text)
            return unbound_field.bind(form=form, filters=filters, **options)
