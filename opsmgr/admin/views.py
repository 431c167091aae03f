"""Admin pages for staff accounts."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from opsmgr.admin.forms import ConfirmForm, ResetPasswordForm, RoleForm, StaffCreateForm
from opsmgr.auth import service
from opsmgr.auth.models import StaffUser
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_change_staff, can_manage_staff

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _target(user_id):
    target = db.get_or_404(StaffUser, user_id)
    if not can_change_staff(current_user, target):
        abort(403)
    return target


@bp.route("/staff")
@requires(can_manage_staff)
def staff_list():
    staff = db.session.scalars(select(StaffUser).order_by(StaffUser.is_active_account.desc(),
                                                           StaffUser.username)).all()
    from opsmgr.reports.service import integrity_failures

    return render_template("admin/staff_list.html", staff=staff, confirm=ConfirmForm(),
                           refused_documents=integrity_failures())


@bp.route("/staff/new", methods=["GET", "POST"])
@requires(can_manage_staff)
def staff_create():
    form = StaffCreateForm()
    if not form.validate_on_submit():
        return render_template("admin/staff_form.html", form=form)

    def created(user):
        flash(f"Account {user.username} created. Give them the temporary password in person.", "success")
        return redirect(url_for("admin.staff_detail", user_id=user.id))

    def refused(error):
        show_at_fields(form, error)
        return render_template("admin/staff_form.html", form=form)

    return attempt(lambda: service.create_staff(
        username=form.username.data, full_name=form.full_name.data, role=form.role.data,
        credentials=form.credentials.data, password=form.password.data, actor=current_actor(), now=utcnow(),
        must_change=True), done=created, refused=refused)


@bp.route("/staff/<int:user_id>")
@requires(can_manage_staff)
def staff_detail(user_id):
    target = db.get_or_404(StaffUser, user_id)
    return render_template("admin/staff_detail.html", target=target, role_form=RoleForm(role=target.role),
                           reset_form=ResetPasswordForm(), confirm=ConfirmForm())


@bp.route("/staff/<int:user_id>/role", methods=["POST"])
@requires(can_manage_staff)
def staff_role(user_id):
    target = _target(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return render_template("admin/staff_detail.html", target=target, role_form=form,
                               reset_form=ResetPasswordForm(), confirm=ConfirmForm()), 400
    return attempt(lambda: service.change_role(target, role=form.role.data, actor=current_actor(), now=utcnow()),
                   done=lambda _: _to_detail(target, f"{target.username} is now {target.role_enum.label}."),
                   refused=lambda error: _role_refused(target, form, error))


def _role_refused(target, form, error):
    show_at_fields(form, error, "role")
    return render_template("admin/staff_detail.html", target=target, role_form=form,
                           reset_form=ResetPasswordForm(), confirm=ConfirmForm()), 400


def _to_detail(target, message):
    flash(message, "success")
    return redirect(url_for("admin.staff_detail", user_id=target.id))


@bp.route("/staff/<int:user_id>/password", methods=["POST"])
@requires(can_manage_staff)
def staff_reset_password(user_id):
    target = _target(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _reset_refused(target, form)

    def reset(_):
        flash(f"Temporary password set for {target.username}; they must change it at next sign-in.", "success")
        return redirect(url_for("admin.staff_detail", user_id=target.id))

    return attempt(lambda: service.reset_password(target, new=form.password.data, actor=current_actor(), now=utcnow()),
                   done=reset, refused=lambda error: _reset_refused(target, form, error))


def _reset_refused(target, form, error=None):
    if error is not None:
        show_at_fields(form, error, "password")
    return render_template("admin/staff_detail.html", target=target, role_form=RoleForm(role=target.role),
                           reset_form=form, confirm=ConfirmForm()), 400


@bp.route("/staff/<int:user_id>/deactivate", methods=["POST"])
@requires(can_manage_staff)
def staff_deactivate(user_id):
    return _account_action(user_id, service.deactivate, "{} is deactivated and signed out everywhere.")


@bp.route("/staff/<int:user_id>/reactivate", methods=["POST"])
@requires(can_manage_staff)
def staff_reactivate(user_id):
    return _account_action(user_id, service.reactivate, "{} is active again.")


@bp.route("/staff/<int:user_id>/end-sessions", methods=["POST"])
@requires(can_manage_staff)
def staff_end_sessions(user_id):
    return _account_action(user_id, service.end_sessions_by_admin, "{} is signed out everywhere.")


def _account_action(user_id, action, message):
    target = _target(user_id)
    return attempt(lambda: action(target, actor=current_actor(), now=utcnow()),
                   done=lambda _: _to_detail(target, message.format(target.username)),
                   refused=lambda error: _role_refused(target, RoleForm(role=target.role), error))
