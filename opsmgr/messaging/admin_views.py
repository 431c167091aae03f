"""The admin page for the wording of patient reminders: edit, preview on a demo patient, save."""
from flask import Blueprint, flash, redirect, render_template, request, url_for

from opsmgr.core.clock import utcnow
from opsmgr.core.edits import EditConflict, attempt_merged, conflict_view, kept_message, merge_input, open_on, reopen
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor, show_at_fields
from opsmgr.messaging import templates
from opsmgr.messaging.forms import MessageTemplatesForm
from opsmgr.permissions import can_edit_message_templates
from opsmgr.rules.reminders import PLACEHOLDERS

bp = Blueprint("message_templates", __name__, url_prefix="/admin/messages")

RESTORE = "restore:"


@bp.route("", methods=["GET", "POST"])
@requires(can_edit_message_templates)
def edit():
    stored = templates.stored_texts()
    if request.method == "GET":
        texts = {name: part.text for name, part in stored.items()}
        return _page(open_on(MessageTemplatesForm(formdata=None, data=texts), texts), stored)
    form = MessageTemplatesForm()
    action = request.form.get("action", "save")
    restored = action.removeprefix(RESTORE) if action.startswith(RESTORE) else None
    if restored in templates.PARTS:
        form[restored].data, form[restored].raw_data = templates.normalize(templates.PARTS[restored]), None
    if not form.validate_on_submit():
        return _page(form, stored, 400, restored=restored)
    if action != "save":
        return _previewed(form, stored, restored)
    return attempt_merged(lambda: templates.save_templates(form.texts(), **merge_input(form), actor=current_actor(),
                                                           now=utcnow()),
                          done=lambda saved: _saved(saved, form), refused=lambda error: _refused(form, stored, error))


def _previewed(form, stored, restored):
    """Nothing saved: the typed texts rendered for the demo patient, problems at their fields."""
    shown = templates.preview(form.texts(), templates.sample_values(utcnow()))
    for name, problems in shown.problems.items():
        form[name].errors = [*form[name].errors, *problems]
    return _page(form, stored, 400 if shown.problems else 200, preview=shown, restored=restored)


def _saved(saved, form):
    said = "Reminder texts saved." if saved.changed else "Nothing changed in the reminder texts."
    flash(" ".join(filter(None, [said, kept_message(saved.kept, saved.saved_by, form)])), "success")
    if saved.changed and templates.preview(saved.merge.values, templates.sample_values(utcnow())).sms_is_long:
        flash(f"The text message is over {templates.SMS_WARN_CHARACTERS} characters for the demo patient, so it "
              "goes as three or more SMS segments. Consider shortening it.", "warning")
    return redirect(url_for("message_templates.edit"))


def _refused(form, stored, error):
    if isinstance(error, EditConflict):
        reopen(form, error)
        return _page(form, templates.stored_texts(), 409, merge=conflict_view(form, error))
    show_at_fields(form, error)
    return _page(form, stored, 400)


def _page(form, stored, status=200, preview=None, restored=None, merge=None):
    return render_template("messaging/templates.html", form=form, stored=stored, parts=templates.PARTS,
                           placeholders=PLACEHOLDERS, preview=preview, restored=restored, merge=merge,
                           sms_limit=templates.SMS_WARN_CHARACTERS), status
