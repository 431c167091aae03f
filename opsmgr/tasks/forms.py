"""The form that resolves one physician task (one per task on the page, hence the prefix)."""
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length

from opsmgr.core.forms import BaseForm


class ResolveForm(BaseForm):
    class Meta:
        csrf = False  # several on one page; the app-wide CSRFProtect checks every POST

    note = TextAreaField("What was done", validators=[InputRequired(), Length(max=2000)], render_kw={"rows": 2},
                         description="For example: saw the patient, the safety plan, whether the dose goes ahead.")

    @classmethod
    def for_task(cls, task, **kwargs):
        return cls(prefix=f"task{task.id}", **kwargs)
