"""Resolving a physician task; the open tasks are listed on the physician's home page."""
from flask import Blueprint, abort, flash, redirect, url_for

from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_resolve_physician_task
from opsmgr.tasks import service
from opsmgr.tasks.forms import ResolveForm
from opsmgr.tasks.models import PhysicianTask
from opsmgr.worklists.views import physician_home_page

bp = Blueprint("tasks", __name__)


@bp.route("/tasks/<int:task_id>/resolve", methods=["POST"])
@requires(can_resolve_physician_task)
def resolve(task_id):
    task = db.session.get(PhysicianTask, task_id) or abort(404)
    form = ResolveForm.for_task(task)
    if not form.validate():
        return physician_home_page(status=400, task_forms={task_id: form})

    def resolved(_):
        flash("The task is resolved.", "success")
        return redirect(url_for("worklists.physician_home", _anchor="tasks"))

    def refused(error):
        show_at_fields(form, error, "note")  # the form's one field
        return physician_home_page(status=400, task_forms={task_id: form})

    return attempt(lambda: service.resolve_task(task, actor=current_actor(), note=form.note.data, now=utcnow()),
                   done=resolved, refused=refused)
