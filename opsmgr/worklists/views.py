"""Each role's home page: the nurse's board of today's chairs, the coordinator's schedule, the physician's lists."""
from datetime import timedelta

from flask import Blueprint, current_app, g, render_template, request
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from opsmgr.audit.service import record
from opsmgr.core.clock import clinic_zone, utcnow
from opsmgr.core.guard import background, requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.followups import worklist as followups_worklist
from opsmgr.infusion import alerts
from opsmgr.messaging.confirmations import confirmations_for
from opsmgr.permissions import can_book_sessions, can_view_physician_home, can_view_schedule
from opsmgr.restricted.access import hidden_patients
from opsmgr.rules.notes import next_step
from opsmgr.schedule.forms import StatusForm, WeekForm
from opsmgr.schedule.grid import clock as grid_clock
from opsmgr.schedule.service import allowed_targets
from opsmgr.tasks.forms import ResolveForm
from opsmgr.worklists import live, service

bp = Blueprint("worklists", __name__)


def _board_fragment(now):
    """Today's board as its live part renders it (the page holds it, the poll replaces it), and its size."""
    today = now.astimezone(clinic_zone()).date()
    board = service.todays_board(today, now=now, zone=current_app.config["CLINIC_TIMEZONE"])
    countdowns = live.countdowns(board.vitals_due, now)
    overdue = live.overdue(board.by_chair, board.chairs, countdowns)
    html = render_template("worklists/_board_live.html", by_chair=board.by_chair, chairs=board.chairs,
                           countdowns=countdowns, overdue=overdue, late_chairs={chair.id for chair, *_ in overdue},
                           now_ms=live.epoch_ms(now),
                           alerts=board.alerts, next_step=next_step, allowed_targets=allowed_targets,
                           status_form=StatusForm(), note_status=board.note_status,
                           confirmations=confirmations_for([v for day in board.by_chair.values() for v in day]))
    return html, board.count


@bp.route("/today")
@requires(can_view_schedule)
def board():
    now = utcnow()
    fragment, count = _board_fragment(now)
    rendered = Markup(fragment)  # noqa: S704  # nosec B704  # an autoescaped template's output, inserted as it is
    html = render_template("worklists/board.html", today=now.astimezone(clinic_zone()).date(), fragment=rendered,
                           state=live.state_of(fragment), poll_seconds=live.POLL_SECONDS)
    record("board.viewed", actor=current_actor(), now=now, details={"sessions": count})
    db.session.commit()
    return html


@bp.route("/today/live")
@requires(can_view_schedule)
@background
def board_live():
    """The board's live part for the page's poll (static/js/board.js): 204 when nothing shown has changed
    since the state in `since` (nothing disclosed, nothing audited). Not the user's activity (guard.background)."""
    now = utcnow()
    fragment, count = _board_fragment(now)
    state = live.state_of(fragment)
    headers = {"X-Board-State": state, "X-Server-Now": str(live.epoch_ms(now))}
    if request.args.get("since") == state:
        return "", 204, headers
    record("board.refreshed", actor=current_actor(), now=now, details={"sessions": count})
    db.session.commit()
    return fragment, 200, headers


@bp.app_context_processor
def open_alert_badge():
    """The navigation's count of in-chair alerts not acknowledged: one statement, only on a page that asks."""
    def open_alert_count():
        if "open_alert_count" not in g:
            try:
                g.open_alert_count = alerts.open_alert_count()
            except SQLAlchemyError:  # an error page for a failed database: no badge rather than a second failure
                db.session.rollback()
                g.open_alert_count = None
        return g.open_alert_count

    return {"open_alert_count": open_alert_count}


@bp.route("/schedule")
@requires(can_view_schedule)
def week():
    """A day of the week as a time grid (chairs × clinic hours), the week's days above it."""
    now = utcnow()
    today = now.astimezone(clinic_zone()).date()
    form = WeekForm(request.args)
    form.validate()
    shown = service.schedule_day(form.chosen or today, now=now, zone=current_app.config["CLINIC_TIMEZONE"],
                                 offer_slots=can_book_sessions(current_user))
    html = render_template("worklists/week.html", form=form, grid=shown, today=today, clock=grid_clock,
                           previous_week=shown.day - timedelta(days=7), next_week=shown.day + timedelta(days=7),
                           confirmations=confirmations_for(shown.sessions))
    record("calendar.viewed", actor=current_actor(), now=now,
           details={"day": shown.day.isoformat(), "sessions": shown.count})
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
    lists = service.physician_lists(now=now, today=now.astimezone(clinic_zone()).date(),
                                    zone=current_app.config["CLINIC_TIMEZONE"])
    forms, task_errors = _task_forms(lists.tasks, task_forms or {})
    reviews, note_states = followups_worklist.physician_items(now=now)
    g.open_alert_count = len(lists.alerts)  # the navigation's badge counts the same alerts: no second statement
    hidden_patients()  # the lists' rows ask it; asked here, an empty home and a full one run the same statements
    html = render_template("worklists/physician_home.html", tasks=lists.tasks, task_forms=forms,
                           task_errors=task_errors, unsigned=lists.unsigned, waiting=lists.waiting,
                           reviews=reviews, review_labels=followups_worklist.KIND_LABELS, note_states=note_states,
                           alerts=lists.alerts, acknowledged=lists.acknowledged)
    record("physician_home.viewed", actor=current_actor(), now=now,
           details={"open_alerts": len(lists.alerts), "open_tasks": len(lists.tasks),
                    "unsigned_notes": len(lists.unsigned), "waiting": len(lists.waiting), "reviews": len(reviews)})
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
