"""Feed token management for staff, and the token-protected feeds themselves."""
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from opsmgr.audit.service import Actor, record
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor
from opsmgr.extensions import db
from opsmgr.feeds import service
from opsmgr.permissions import can_use_calendar_feed
from opsmgr.schedule.models import Chair

bp = Blueprint("feeds", __name__)


@bp.route("/account/calendar")
@requires(can_use_calendar_feed)
def manage():
    return render_template("feeds/manage.html", token=None, active=service.active_token(current_user))


@bp.route("/account/calendar/token", methods=["POST"])
@requires(can_use_calendar_feed)
def issue():
    token = service.issue_token(current_user, actor=current_actor(), now=utcnow())
    db.session.commit()
    chairs = db.session.query(Chair).filter(Chair.is_active.is_(True)).order_by(Chair.position, Chair.id).all()
    # Shown once, in this response only (never in a flash message, which would sit in the cookie).
    return render_template("feeds/manage.html", token=token, active=True, chairs=chairs)


@bp.route("/account/calendar/revoke", methods=["POST"])
@requires(can_use_calendar_feed)
def revoke():
    return attempt(lambda: service.revoke_tokens(current_user, actor=current_actor(), now=utcnow()),
                   done=_revoked, refused=lambda error: abort(409, str(error)))


def _revoked(count):
    flash("Your calendar feed address no longer works." if count else "You had no active feed address.", "info")
    return redirect(url_for("feeds.manage"))


def _feed(chair_id=None):
    owner = service.owner_of(request.args.get("token", ""))
    actor = Actor(owner.id, owner.username, owner.role, request.remote_addr) if owner else \
        Actor(None, None, None, request.remote_addr)
    now = utcnow()
    if owner is None:
        record("calendar.feed_read", actor=actor, now=now, outcome="denied", details={"chair_id": chair_id})
        db.session.commit()
        abort(404)
    title = "Clinic schedule"
    if chair_id is not None:
        chair = db.get_or_404(Chair, chair_id)
        title = f"{chair.name} schedule"
    body, count, with_names = service.build_feed(now=now, chair_id=chair_id, title=title)
    record("calendar.feed_read", actor=actor, now=now,
           details={"chair_id": chair_id, "sessions": count, "patient_names": with_names})
    db.session.commit()
    return Response(body, mimetype="text/calendar")


@bp.route("/calendar/clinic.ics")
def clinic_feed():
    """Token-protected (the token is in the query string, which the access log leaves out)."""
    return _feed()


@bp.route("/calendar/chairs/<int:chair_id>.ics")
def chair_feed(chair_id):
    return _feed(chair_id)
