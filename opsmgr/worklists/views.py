"""Each role's home page: the nurse's board of today's chairs, the coordinator's week, the physician's lists."""
from datetime import timedelta

from flask import Blueprint, current_app, render_template, request

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.followups import worklist as followups_worklist
from opsmgr.messaging.confirmations import confirmations_for
from opsmgr.notes.service import status_by_session
from opsmgr.permissions import can_view_physician_home, can_view_schedule
from opsmgr.rules.notes import next_step
from opsmgr.schedule.clinic import days_open
from opsmgr.schedule.forms import StatusForm, WeekForm
from opsmgr.schedule.service import allowed_targets
from opsmgr.tasks.forms import ResolveForm
from opsmgr.worklists import service

bp = Blueprint("worklists", __name__)


@bp.route("/today")
@requires(can_view_schedule)
def board():
    now = utcnow()
    today = now.astimezone(clinic_zone()).date()
    board = service.todays_board(today, now=now, zone=current_app.config["CLINIC_TIMEZONE"])
    html = render_template("worklists/board.html", today=today, by_chair=board.by_chair, chairs=board.chairs,
                           vitals_due=board.vitals_due, next_step=next_step, allowed_targets=allowed_targets,
                           status_form=StatusForm(), note_status=board.note_status,
                           confirmations=confirmations_for([v for day in board.by_chair.values() for v in day]))
    record("board.viewed", actor=current_actor(), now=now, details={"sessions": board.count})
    db.session.commit()
    return html


@bp.route("/schedule")
@requires(can_view_schedule)
def week():
    now = utcnow()
    today = now.astimezone(clinic_zone()).date()
    form = WeekForm(request.args)
    anchor = form.start.data if form.validate() and form.start.data else today
    week = service.week_of(anchor, zone=current_app.config["CLINIC_TIMEZONE"])
    bookable, closed = days_open(week.days, today)
    html = render_template("worklists/week.html", form=form, days=week.days, chairs=week.chairs, cells=week.cells,
                           bookable=bookable, closed=closed,
                           monday=week.monday, previous_week=week.monday - timedelta(days=7),
                           next_week=week.monday + timedelta(days=7), today=today,
                           confirmations=confirmations_for([v for sessions in week.cells.values() for v in sessions]))
    record("calendar.viewed", actor=current_actor(), now=now,
           details={"week": week.monday.isoformat(), "sessions": week.count})
    db.session.commit()
    return html


@bp.route("/signing")
@requires(can_view_physician_home)
def physician_home():
    return physician_home_page()


def physician_home_page(status=200, task_forms=None):
    """The physician's lists, a section each: open tasks (and, with a submitted form, its errors), the
    sessions waiting for an override and the completed notes waiting for a signature."""
    now = utcnow()
    lists = service.physician_lists(now=now, today=now.astimezone(clinic_zone()).date())
    forms, task_errors = _task_forms(lists.tasks, task_forms or {})
    reviews = followups_worklist.physician_items(now=now)
    note_states = status_by_session({item.session_id for item in reviews if item.kind == "unsigned_note"})
    html = render_template("worklists/physician_home.html", tasks=lists.tasks, task_forms=forms,
                           task_errors=task_errors, unsigned=lists.unsigned, waiting=lists.waiting,
                           reviews=reviews, review_labels=followups_worklist.KIND_LABELS, note_states=note_states)
    record("physician_home.viewed", actor=current_actor(), now=now,
           details={"open_tasks": len(lists.tasks), "unsigned_notes": len(lists.unsigned),
                    "waiting": len(lists.waiting), "reviews": len(reviews)})
    db.session.commit()
    return html, status


def _task_forms(tasks, submitted):
    """A resolve form per listed task (a submitted one keeps its input and errors), and the errors of a
    submitted form whose task a colleague resolved meanwhile: it is no longer listed, so they are shown apart."""
    forms = {row.task.id: submitted.get(row.task.id) or ResolveForm.for_task(row.task, formdata=None)
             for row in tasks}
    errors = [error for task_id, form in submitted.items() if task_id not in forms
              for messages in form.errors.values() for error in messages]
    return forms, errors
