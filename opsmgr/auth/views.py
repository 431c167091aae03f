"""Sign in, sign out, change password and PIN, a chair tablet's locked screen; the per-request session check."""
from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from opsmgr.auth import service, tablets
from opsmgr.auth.forms import ChangePasswordForm, LoginForm, PinForm, UnlockForm
from opsmgr.core import reads
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import is_background, requires
from opsmgr.core.web import attempt, current_actor, safe_next, show_at_fields
from opsmgr.extensions import db, login_manager
from opsmgr.permissions import can_change_own_password
from opsmgr.twofactor import service as two_factor

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Sign-in failed: the username or password is not correct, or the account is locked or inactive."


@login_manager.user_loader
def load_user(token):
    user, ended = service.resume_session(token, now=utcnow(), touch=not is_background(request.endpoint),
                                         device_token=device_token())
    g.session_end_reason = ended
    return user


def device_token():
    """The enrolled chair tablet's token from its long-lived cookie (tablets.enrol sets it), or None."""
    return request.cookies.get(current_app.config["TABLET_COOKIE_NAME"])


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
        result = service.authenticate(form.username.data, form.password.data, ip=request.remote_addr,
                                      now=utcnow(), tablet=tablets.find_tablet(device_token()))
        if result.needs_code:  # the half-signed-in state: no session, only the code page (core.guard)
            db.session.commit()
            session.clear()
            session[two_factor.PENDING] = {"user_id": result.user.id, "at": int(utcnow().timestamp()),
                                           "next": safe_next(request.args.get("next"))}
            return redirect(url_for("two_factor.sign_in_code"))
        if result.ok:
            return finish_sign_in(result.user, request.args.get("next"))
        db.session.commit()
        form.password.errors.append(LOGIN_FAILED)
    return render_template("auth/login.html", form=form)


def finish_sign_in(user, target):
    """Commit the sign-in, start the Flask-Login session, tell of an admin's reset of the second factor,
    and send someone whose role needs two-factor (and who has none) to set it up before anything else."""
    reset_at = two_factor.take_reset_notice(user.id)
    must_enrol = not two_factor.is_on(user.id) and two_factor.is_required(user.role)
    db.session.commit()
    session.clear()
    login_user(user)
    if reset_at is not None:
        flash("An administrator reset your two-factor sign-in. Set it up again with your authenticator app.",
              "warning")
    if must_enrol:
        session[two_factor.MUST_ENROL] = True
        flash("Your role signs in with two factors: set up your authenticator app to continue.", "info")
        return redirect(url_for("two_factor.account"))
    return redirect(safe_next(target) or url_for("core.home"))


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


def locked_screen():
    """What every request of a locked tablet session gets (core.guard): the lock page, where the same
    person resumes with their PIN and comes back to this page; a page's script gets 401."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify(status="locked", login=url_for("auth.login")), 401
    target = None
    if request.method == "GET":
        target = request.args.get("next") if request.endpoint == "auth.login" else request.full_path.rstrip("?")
    return _lock_page(UnlockForm(formdata=None, next=safe_next(target)))


def _lock_page(form):
    # Its own layout: no navigation, no flashed messages (they wait for the unlock), nothing about a patient.
    return render_template("auth/locked.html", form=form, pin_set=current_user.pin_hash is not None), 401


@bp.route("/lock", methods=["POST"])
@requires(can_change_own_password)
def lock():
    """Lock this chair tablet's screen now (the page's idle timer posts here); a desktop is left as it is."""
    target = safe_next(request.form.get("next")) or url_for("core.home")
    stays = tablets.lock_screen(current_user, actor=current_actor(), now=utcnow())
    db.session.commit()
    if stays:
        return redirect(target)
    logout_user()
    session.clear()
    flash("The screen locked and no PIN is set for you, so you were signed out. "
          "Set a PIN under your account to resume with it next time.", "info")
    return redirect(url_for("auth.login", next=target))


@bp.route("/unlock", methods=["POST"])
@requires(can_change_own_password)
def unlock():
    form = UnlockForm()
    back = safe_next(form.next.data) or url_for("core.home")
    if not current_user.is_screen_locked:
        return redirect(back)
    if not form.validate_on_submit():
        return _lock_page(form)

    def refused(error):
        if isinstance(error, tablets.PinLockout):  # the session ended: a full sign-in, as anyone
            logout_user()
            session.clear()
            flash(str(error), "warning")
            return redirect(url_for("auth.login", next=back))
        show_at_fields(form, error)
        return _lock_page(form)

    return attempt(lambda: tablets.unlock_screen(current_user, form.pin.data, actor=current_actor(), now=utcnow()),
                   done=lambda _: redirect(back), refused=refused)


@bp.route("/account/pin", methods=["GET", "POST"])
@requires(can_change_own_password)
def change_pin():
    form = PinForm()
    if not form.validate_on_submit():
        return render_template("auth/pin.html", form=form)

    def changed(_):
        flash("Your PIN is set. On a chair tablet it unlocks your own locked screen.", "success")
        return redirect(url_for("auth.change_pin"))

    def refused(error):  # a wrong password was audited (reauth.failed) and counts toward the lockout
        show_at_fields(form, error)
        return render_template("auth/pin.html", form=form)

    return attempt(lambda: tablets.set_pin(current_user, password=form.password.data, pin=form.pin.data,
                                           actor=current_actor(), now=utcnow()),
                   done=changed, refused=refused)
