"""The admin audit report: filter, sort, page, export as CSV."""
import csv
import io
from datetime import datetime, time, timedelta

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import func, select

from opsmgr.audit.forms import AuditFilterForm
from opsmgr.audit.service import AuditFilter, filtered_events, record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.permissions import can_export_audit, can_view_audit

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

CSV_COLUMNS = ("id", "occurred_at", "username", "role", "action", "object_type", "object_id",
               "patient_id", "outcome", "ip", "details")


def _criteria(form):
    zone = clinic_zone()

    def local_midnight(day):
        return datetime.combine(day, time.min, tzinfo=zone)

    data = form.data if form.validate() else {}
    return AuditFilter(
        username=data.get("username") or None,
        patient_id=data.get("patient_id"),
        action=data.get("action") or None,
        outcome=data.get("outcome") or None,
        start=local_midnight(data["start"]) if data.get("start") else None,
        end=local_midnight(data["end"] + timedelta(days=1)) if data.get("end") else None,
        sort=data.get("sort") or "time",
        descending=data.get("direction", "desc") != "asc",
    )


@bp.route("/")
@requires(can_view_audit)
def event_list():
    form = AuditFilterForm(request.args)
    criteria = _criteria(form)
    page_size = current_app.config["AUDIT_PAGE_SIZE"]
    page = form.page.data if not form.page.errors and form.page.data else 1
    query = filtered_events(criteria)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    events = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    record("audit.viewed", actor=current_actor(), now=utcnow(), details={"page": page})
    db.session.commit()
    pages = max(1, -(-total // page_size))
    return render_template("audit/list.html", form=form, events=events, total=total, page=page, pages=pages)


@bp.route("/export.csv")
@requires(can_export_audit)
def export_csv():
    form = AuditFilterForm(request.args)
    criteria = _criteria(form)
    events = db.session.scalars(filtered_events(criteria)).all()
    record("audit.exported", actor=current_actor(), now=utcnow(), details={"rows": len(events)})
    db.session.commit()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow([_csv_safe(getattr(event, column)) for column in CSV_COLUMNS])
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})


def _csv_safe(value):
    """Text for a CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text
