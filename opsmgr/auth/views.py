"""Sign in, sign out, change password; the per-request session check."""
from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from opsmgr.auth import service
from opsmgr.auth.forms import ChangePasswordForm, LoginForm
from opsmgr.core import reads
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, safe_next, show_at_fields
from opsmgr.extensions import db, login_manager
from opsmgr.permissions import can_change_own_password

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Sign-in failed: the username or password is not correct, or the account is locked or inactive."


@login_manager.user_loader
def load_user(token):
    user, ended = service.resume_session(token, now=utcnow())
    g.session_end_reason = ended
    return user


def load_staff_session():
    """Resolve the session cookie once per request and save its last-seen time or its timeout."""
    if request.endpoint == "static":
        return
    current_user._get_current_object()
    if not reads.in_read_phase():  # a read request saves its touch with its audit rows (core.reads)
        db.session.commit()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    form = LoginForm()
    if form.validate_on_submit():
        result = service.authenticate(form.username.data, form.password.data,
                                      ip=request.remote_addr, now=utcnow())
        db.session.commit()
        if result.ok:
            session.clear()
            login_user(result.user)
            return redirect(safe_next(request.args.get("next")) or url_for("core.home"))
        form.password.errors.append(LOGIN_FAILED)
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@requires(can_change_own_password)
def logout():
    service.end_session(current_user.session_token, actor=current_actor(), now=utcnow())
    db.session.commit()
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@requires(can_change_own_password)
def change_password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return render_template("auth/change_password.html", form=form)

    def changed(_):
        flash("Your password has been changed. Your other sessions were signed out.", "success")
        return redirect(url_for("core.home"))

    def refused(error):  # a wrong current password was audited (password.change_failed) and is kept
        show_at_fields(form, error)
        return render_template("auth/change_password.html", form=form)

    return attempt(lambda: service.change_own_password(current_user, current=form.current_password.data,
                                                       new=form.password.data, token=current_user.session_token,
                                                       actor=current_actor(), now=utcnow()),
                   done=changed, refused=refused)
