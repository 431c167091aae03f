"""The base form every form builds on, and the date-range filter mixin."""
import json
import re
from datetime import date, datetime

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from werkzeug.datastructures import ImmutableMultiDict
from wtforms import DateTimeField, HiddenField, PasswordField, StringField
from wtforms.validators import ValidationError

#: C0 control characters other than tab and newlines, DEL and the C1 controls (U+0080-U+009F): never
#: meaningful in a form, invisible on a page, and PostgreSQL cannot store NUL at all.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Unicode bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder
#: how the text around them is shown ("Trojan Source", CVE-2021-42574), so a note can read differently
#: from what it stores. Removed from every stored text. The marks U+200E, U+200F and U+061C are kept: they
#: only set the direction of the characters next to them, and right-to-left names need them.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_text(value):
    """Text without surrounding space, control characters or bidirectional controls; a field left out of
    the request is ''."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    return BIDI_CONTROLS.sub("", CONTROL_CHARACTERS.sub("", value)).strip()


#: Lone surrogates: a JSON body can carry them (a form body cannot), and no database can store them.
SURROGATES = re.compile("[\ud800-\udfff]")


def json_formdata(value):
    """A JSON body (which Flask-WTF takes in place of a form) read as a form would be: text values with no
    lone surrogates, numbers and booleans as their text, a list as repeated values; anything else ignored."""
    def text(item):
        if isinstance(item, str):
            return SURROGATES.sub("", item)
        return json.dumps(item) if isinstance(item, (bool, int, float)) else None

    pairs = []
    for name, item in (value.items() if isinstance(value, dict) else ()):
        for one in item if isinstance(item, list) else [item]:
            if text(one) is not None:
                pairs.append((SURROGATES.sub("", name), text(one)))
    return ImmutableMultiDict(pairs)


def yes_no(value):
    """A yes/no select's value as True, False, or None when not answered ("")."""
    if value is None or isinstance(value, bool):
        return value
    answers = {"": None, "yes": True, "no": False}
    if value not in answers:
        raise ValueError(value)
    return answers[value]


#: The dates any form accepts, unless the form narrows them (EARLIEST and LATEST on the form; a field's own
#: validators may narrow further): date arithmetic (a week on, a day back) stays far from year 1 and 9999.
EARLIEST_DATE, LATEST_DATE = date(1000, 1, 1), date(9000, 12, 31)


def _bounded_dates(form, field):
    """Make `field` (a date or date-time field) read a date outside the form's range as no date, with a worded
    error, as it does a date that does not parse: no view ever computes with year 1 or 9999."""
    earliest, latest = getattr(form, "EARLIEST", EARLIEST_DATE), getattr(form, "LATEST", LATEST_DATE)
    parse = field.process_formdata

    def process_formdata(valuelist):
        parse(valuelist)
        day = field.data.date() if isinstance(field.data, datetime) else field.data
        if isinstance(day, date) and not earliest <= day <= latest:
            field.data = None
            raise ValueError(f"Enter a date between {earliest.year} and {latest.year}.")

    field.process_formdata = process_formdata


class DateRange:
    """Form mixin for a `start` and `end` date filter: each within [EARLIEST, LATEST] (a form narrows
    them; BaseForm applies them), and the end not before the start. The form declares the two fields
    with its own labels."""

    EARLIEST, LATEST = date(1900, 1, 1), LATEST_DATE

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date is before the start date.")


class BaseForm(FlaskForm):
    """A form that strips surrounding whitespace, control characters and bidirectional controls from text
    input, and reads dates outside [EARLIEST_DATE, LATEST_DATE] as errors."""

    class Meta:
        def wrap_formdata(self, form, formdata):
            if formdata is _Auto and request.is_json and not (request.form or request.files) and form.is_submitted():
                return json_formdata(request.get_json())
            return super().wrap_formdata(form, formdata)

        def bind_field(self, form, unbound_field, options):
            filters = list(unbound_field.kwargs.get("filters", []))
            if issubclass(unbound_field.field_class, StringField) and not issubclass(
                    unbound_field.field_class, PasswordField | HiddenField):
                filters.append(clean_text)
            field = unbound_field.bind(form=form, filters=filters, **options)
            if isinstance(field, DateTimeField):
                _bounded_dates(form, field)
            return field
