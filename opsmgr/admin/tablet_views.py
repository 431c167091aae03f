"""Admin pages for chair tablets: enrol the device in hand, list and revoke."""
from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from opsmgr.admin.forms import TabletForm
from opsmgr.auth import tablets
from opsmgr.auth.models import ChairTablet
from opsmgr.auth.views import device_token
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_manage_staff

bp = Blueprint("tablets", __name__, url_prefix="/admin/tablets")

#: Browsers keep a cookie at most 400 days; a tablet is enrolled again after that.
COOKIE_AGE = timedelta(days=400)


def _page(form, status=200):
    this_device = tablets.find_tablet(device_token())
    return render_template("admin/tablets.html", tablets=tablets.list_tablets(), form=form,
                           this_device_id=this_device.id if this_device else None), status


@bp.route("/")
@requires(can_manage_staff)
def overview():
    return _page(TabletForm())


@bp.route("/enrol", methods=["POST"])
@requires(can_manage_staff)
def enrol():
    """Enrol the device this admin is using: it gets the long-lived tablet cookie (only its hash is stored)."""
    form = TabletForm()
    if not form.validate_on_submit():
        return _page(form, 400)

    def enrolled(result):
        tablet, token = result
        flash(f"This device is enrolled as {tablet.name}. Sign out: staff who sign in here lock the screen "
              "when idle and resume with their PIN.", "success")
        response = redirect(url_for("tablets.overview"))
        response.set_cookie(current_app.config["TABLET_COOKIE_NAME"], token, max_age=COOKIE_AGE, path="/",
                            secure=current_app.config["HTTPS"], httponly=True, samesite="Lax")
        return response

    def refused(error):
        show_at_fields(form, error, "name")
        return _page(form, 400)

    replacing = tablets.find_tablet(device_token())
    return attempt(lambda: tablets.enrol_tablet(form.name.data, actor=current_actor(), now=utcnow(),
                                                replacing=replacing),
                   done=enrolled, refused=refused)


@bp.route("/<int:tablet_id>/revoke", methods=["POST"])
@requires(can_manage_staff)
def revoke(tablet_id):
    tablet = db.get_or_404(ChairTablet, tablet_id)

    def revoked(ended):
        flash(f"{tablet.name} is revoked; sessions open on it ended: {ended}.", "success")
        return redirect(url_for("tablets.overview"))

    return attempt(lambda: tablets.revoke_tablet(tablet, actor=current_actor(), now=utcnow()),
                   done=revoked, refused=lambda error: _page(TabletForm(formdata=None), 400))
