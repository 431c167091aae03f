"""The admin page for the clinical policy."""
from flask import Blueprint, flash, redirect, render_template, url_for

from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import current_actor
from opsmgr.extensions import db
from opsmgr.permissions import can_manage_clinic
from opsmgr.policy import service
from opsmgr.policy.forms import POLICY_FIELDS, PolicyForm

bp = Blueprint("policy", __name__, url_prefix="/admin/policy")


@bp.route("/", methods=["GET", "POST"])
@requires(can_manage_clinic)
def edit():
    version, policy = service.current_policy()
    form = PolicyForm(data={**policy.to_dict(), "version": version})
    if form.validate_on_submit():
        values = {name: form[name].data for name in POLICY_FIELDS}
        values = {name: float(value) if isinstance(policy.to_dict()[name], float) else value
                  for name, value in values.items()}
        try:
            row = service.revise_policy(values, based_on=form.version.data, note=form.note.data,
                                        actor=current_actor(), now=utcnow())
        except service.PolicyError as error:
            db.session.rollback()
            form.note.errors.append(str(error))
            return render_template("policy/edit.html", form=form, version=version, history=service.history(),
                                   fields=POLICY_FIELDS), 409
        db.session.commit()
        flash(f"Clinical policy version {row.version} is now in force." if row else "Nothing changed.",
              "success" if row else "info")
        return redirect(url_for("policy.edit"))
    return render_template("policy/edit.html", form=form, version=version, history=service.history(),
                           fields=POLICY_FIELDS)
