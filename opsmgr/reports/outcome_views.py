"""The clinic's outcome page: response and remission by protocol and quarter (physicians and admins)."""
from datetime import date

from flask import Blueprint, render_template, request
from wtforms import DateField
from wtforms.validators import Optional

from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.forms import BaseForm, DateRange
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.permissions import can_view_outcomes
from opsmgr.reports.charts import outcome_bars
from opsmgr.reports.outcomes import outcome_report
from opsmgr.rules.outcomes import DEFINITIONS

bp = Blueprint("outcomes", __name__)

class OutcomeFilterForm(DateRange, BaseForm):
    """A GET form (it changes nothing, so no CSRF token): series first dosed from `start` to `end`."""

    EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)

    class Meta:
        csrf = False

    start = DateField("First dose from (clinic date)", validators=[Optional()])
    end = DateField("First dose to (clinic date, inclusive)", validators=[Optional()])


@bp.get("/reports/outcomes", endpoint="page")
@requires(can_view_outcomes)
def page():
    """Filters that do not validate show their message next to the field and no figures."""
    form = OutcomeFilterForm(request.args)
    report = None
    if form.validate():
        report = outcome_report(actor=current_actor(), now=utcnow(), zone=clinic_zone(),
                                start=form.start.data, end=form.end.data)
    chart = outcome_bars(report.groups) if report and report.groups else None
    return render_template("reports/outcomes.html", form=form, report=report, chart=chart,
                           definitions=DEFINITIONS)
