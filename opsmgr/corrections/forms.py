"""The one form of a mark: the reason an entry is wrong."""
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from opsmgr.core.forms import BaseForm
from opsmgr.rules.corrections import NO_REASON, REASON_MAX, TOO_LONG


class EnteredInErrorForm(BaseForm):
    """One per entry on a page, told apart by a prefix (in-error-<kind>-<id>-reason)."""

    class Meta:
        # A prefix would rename the token field too; the app-wide CSRFProtect checks every POST anyway.
        csrf = False

    reason = TextAreaField("Why is it wrong?", validators=[DataRequired(message=NO_REASON),
                                                           Length(max=REASON_MAX, message=TOO_LONG)],
                           render_kw={"rows": 2, "maxlength": REASON_MAX},
                           description="Kept with the entry, which stays visible, struck through.")

    @classmethod
    def for_entry(cls, kind, entry, **kwargs):
        return cls(prefix=f"in-error-{kind}-{entry.id}", **kwargs)

    @classmethod
    def for_entries(cls, kind, entries, submitted=None):
        """A blank form per entry still counting, the submitted one (with its errors) in its place."""
        submitted = submitted or {}
        return {entry.id: submitted.get(entry.id) or cls.for_entry(kind, entry, formdata=None)
                for entry in entries if not entry.is_entered_in_error}


def chart_forms(patient, submitted=None):
    """{kind: {entry id: form}} for the chart's weights, medications and contraindications."""
    submitted = submitted or {}
    return {kind: EnteredInErrorForm.for_entries(kind, entries, submitted.get(kind))
            for kind, entries in (("weights", patient.weights), ("medications", patient.medications),
                                  ("contraindications", patient.contraindications))}
