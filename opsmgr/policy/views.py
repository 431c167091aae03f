"""The admin page for the clinical policy."""
from flask import Blueprint, flash, redirect, render_template, url_for

from opsmgr.core.clock import utcnow
from opsmgr.core.edits import EditConflict, attempt_merged, conflict_view, kept_message, merge_input, reopen
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.permissions import can_manage_clinic
from opsmgr.policy import service
from opsmgr.policy.forms import POLICY_FIELDS, SEVERITY_FIELDS, PolicyForm, initial_data
from opsmgr.rules.findings import SEVERITY_LABELS
from opsmgr.rules.severities import SEVERITY_RULES, STEPS

bp = Blueprint("policy", __name__, url_prefix="/admin/policy")

#: A severity's form field -> its finding code, as the service names it in a merge.
CODE_OF = {name: code for code, name in SEVERITY_FIELDS.items()}


@bp.route("/", methods=["GET", "POST"])
@requires(can_manage_clinic)
def edit():
    version, policy = service.current_policy()
    form = PolicyForm(data=initial_data(policy, version))
    if not form.validate_on_submit():
        return _page(form, version, status=400 if form.is_submitted() else 200)

    def saved(result):
        row, kept = result.row, kept_message(result.kept, result.saved_by, form, SEVERITY_FIELDS)
        said = f"Clinical policy version {row.version} is now in force." if row else "Nothing changed."
        flash(" ".join(filter(None, [said, kept])), "success" if row else "info")
        return redirect(url_for("policy.edit"))

    def refused(error):
        if isinstance(error, EditConflict):
            reopen(form, error, names=SEVERITY_FIELDS)
            form.version.data, form.version.raw_data = error.version, None
            return _page(form, error.version, status=409, merge=conflict_view(form, error, names=SEVERITY_FIELDS))
        # A problem's field is a finding code (its severity field); one of the whole form shows at the note.
        for code, message in error.errors:
            form[SEVERITY_FIELDS.get(code, "note")].errors.append(message)
        return _page(form, version, status=400)

    return attempt_merged(lambda: service.revise_policy(
        form.values(), based_on=form.version.data, note=form.note.data, **merge_input(form, CODE_OF),
        actor=current_actor(), now=utcnow()), done=saved, refused=refused)


def _page(form, version, status=200, merge=None):
    return render_template("policy/edit.html", form=form, version=version, history=service.history(),
                           fields=POLICY_FIELDS, rules=SEVERITY_RULES.values(), steps=STEPS,
                           severity_fields=SEVERITY_FIELDS, merge=merge,
                           severity_labels={s.value: label for s, label in SEVERITY_LABELS.items()}), status
