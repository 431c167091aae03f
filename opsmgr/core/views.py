"""Health check, the home redirect and each role's home page."""
from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text

from opsmgr.auth.models import Role
from opsmgr.core.guard import requires
from opsmgr.extensions import db
from opsmgr.permissions import (
    can_view_physician_home,
    is_staff,
)

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


@bp.route("/")
@requires(is_staff)
def home():
    return redirect(url_for(HOME_BY_ROLE[current_user.role_enum]))


@bp.route("/signing")
@requires(can_view_physician_home)
def physician_home():
    return render_template("core/physician_home.html")


