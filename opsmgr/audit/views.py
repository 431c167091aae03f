"""The admin audit report: filter, sort, page, export as CSV."""
import io
from datetime import datetime, time, timedelta

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import func, select

from opsmgr.audit.forms import AuditFilterForm
from opsmgr.audit.service import OUTCOME_WORDS, AuditFilter, filtered_events, record, with_names
from opsmgr.core import csvfiles
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.permissions import can_export_audit, can_view_audit

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

#: Filters that narrow the rows. If one is invalid nothing is listed, rather than more than asked for;
#: an invalid sort, order or page only falls back to its default.
NARROWING = ("username", "mrn", "patient_id", "action", "outcome", "start", "end")

CSV_COLUMNS = ("id", "occurred_at", "username", "role", "action", "object_type", "object_id",
               "patient_id", "outcome", "ip", "details")
#: After the event's own columns: the patient's MRN and the staff member's name, as the page shows them.
CSV_NAMES = ("patient_mrn", "staff_name")


def _criteria(form):
    """Filters from a validated form; clinic-local dates become a UTC half-open range."""
    zone = clinic_zone()

    def local_midnight(day):
        return datetime.combine(day, time.min, tzinfo=zone)

    data = form.data
    return AuditFilter(
        username=data["username"] or None,
        mrn=data["mrn"] or None,
        patient_id=data["patient_id"],
        action=data["action"] or None,
        outcome=data["outcome"] or None,
        start=local_midnight(data["start"]) if data["start"] else None,
        end=local_midnight(data["end"] + timedelta(days=1)) if data["end"] else None,
        sort="time" if form.sort.errors else data["sort"],
        descending=bool(form.direction.errors) or data["direction"] != "asc",
    )


def _narrowing_valid(form):
    form.validate()
    return not any(form[name].errors for name in NARROWING)


@bp.route("/")
@requires(can_view_audit)
def event_list():
    form = AuditFilterForm(request.args)
    page_size = current_app.config["AUDIT_PAGE_SIZE"]
    total, events = 0, []
    valid = _narrowing_valid(form)
    page = 1 if form.page.errors or not form.page.data else form.page.data
    if valid:
        query = filtered_events(_criteria(form))
        total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        events = db.session.execute(with_names(query).limit(page_size).offset((page - 1) * page_size)).all()
    # Render before the commit: committing expires the loaded rows and would reload each one.
    html = render_template("audit/list.html", form=form, events=events, total=total, page=page,
                           pages=max(1, -(-total // page_size)), outcome_words=OUTCOME_WORDS)
    record("audit.viewed", actor=current_actor(), now=utcnow(), details={"page": page, "rows": len(events)})
    db.session.commit()
    return html


@bp.route("/export.csv")
@requires(can_export_audit)
def export_csv():
    form = AuditFilterForm(request.args)
    if not _narrowing_valid(form):
        # Never fall back to "everything" when a filter is wrong: that would export the whole trail.
        return render_template("audit/list.html", form=form, events=[], total=0, page=1, pages=1,
                               outcome_words=OUTCOME_WORDS), 400
    buffer = io.StringIO(newline="")
    events = db.session.execute(with_names(filtered_events(_criteria(form))))
    rows = csvfiles.write_rows(buffer, CSV_COLUMNS + CSV_NAMES, (_csv_row(*row) for row in events))
    record("audit.exported", actor=current_actor(), now=utcnow(), details={"rows": rows})
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})


def _csv_row(event, mrn, staff_name):
    cells = [OUTCOME_WORDS[event.outcome] if column == "outcome" else getattr(event, column) for column in CSV_COLUMNS]
    return [*cells, mrn, staff_name]
