"""Health check, the home redirect and each role's home page."""
from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text

from opsmgr.audit.service import record
from opsmgr.auth.models import Role
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.notes.service import unsigned_queue
from opsmgr.permissions import (
    can_view_physician_home,
    is_staff,
)
from opsmgr.tasks.forms import ResolveForm
from opsmgr.tasks.service import open_tasks
from opsmgr.worklists.service import waiting_for_override

bp = Blueprint("core", __name__)

HOME_BY_ROLE = {
    Role.NURSE: "schedule.board",
    Role.COORDINATOR: "schedule.week",
    Role.PHYSICIAN: "core.physician_home",
    Role.ADMIN: "admin.staff_list",
}


@bp.route("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        db.session.rollback()
        return jsonify(status="error", database="unavailable"), 503
    return jsonify(status="ok", database="ok")


@bp.route("/session/ping")
@requires(is_staff)
def ping():
    """Whether the sign-in is still live: pages ask before they post, so typing is never lost to it."""
    return jsonify(status="ok")


@bp.route("/")
@requires(is_staff)
def home():
    return redirect(url_for(HOME_BY_ROLE[current_user.role_enum]))


@bp.route("/signing")
@requires(can_view_physician_home)
def physician_home():
    return physician_home_page()


def physician_home_page(status=200, task_forms=None):
    """The physician's lists, a section each: open tasks (and, with a submitted form, its errors), and the
    completed notes waiting for a signature."""
    now = utcnow()
    tasks = open_tasks(today=now.astimezone(clinic_zone()).date())
    submitted = task_forms or {}
    forms = {row.task.id: submitted.get(row.task.id) or ResolveForm.for_task(row.task, formdata=None)
             for row in tasks}
    # A task resolved by a colleague meanwhile is no longer listed: its form's errors are shown apart.
    task_errors = [error for task_id, form in submitted.items() if task_id not in forms
                   for errors in form.errors.values() for error in errors]
    unsigned, waiting = unsigned_queue(now=now), waiting_for_override()
    html = render_template("core/physician_home.html", tasks=tasks, task_forms=forms, task_errors=task_errors,
                           unsigned=unsigned, waiting=waiting)
    record("physician_home.viewed", actor=current_actor(), now=now,
           details={"open_tasks": len(tasks), "unsigned_notes": len(unsigned), "waiting": len(waiting)})
    db.session.commit()
    return html, status


