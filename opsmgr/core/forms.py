"""The base form every form builds on."""
from flask_wtf import FlaskForm


class BaseForm(FlaskForm):
    """A form that strips surrounding whitespace from text input."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            filters = list(unbound_field.kwargs.get("filters", []))
            if unbound_field.field_class.__name__ in {"StringField", "TextAreaField", "EmailField"}:
                filters.append(lambda value: value.strip() if isinstance(value, str) else value)
            return unbound_field.bind(form=form, filters=filters, **options)
