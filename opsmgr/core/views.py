"""Health check, the sign-in ping and the home redirect to each role's home page (in worklists/)."""
from flask import Blueprint, jsonify, redirect, url_for
from flask_login import current_user
from sqlalchemy import text

from opsmgr.auth.models import Role
from opsmgr.core.guard import requires
from opsmgr.extensions import db
from opsmgr.permissions import is_staff

bp = Blueprint("core", __name__)

HOME_BY_ROLE = {
    Role.NURSE: "worklists.board",
    Role.COORDINATOR: "followups.worklist_page",
    Role.PHYSICIAN: "worklists.physician_home",
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
