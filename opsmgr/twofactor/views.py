"""Two-factor pages: the sign-in code step, a person's own set-up, the admins' policy and reset."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from opsmgr.auth import tablets
from opsmgr.auth.models import StaffUser
from opsmgr.auth.views import LOGIN_FAILED, device_token, finish_sign_in
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor, show_at_fields
from opsmgr.extensions import db
from opsmgr.permissions import can_change_own_password, can_change_staff, can_manage_staff
from opsmgr.twofactor import service
from opsmgr.twofactor.forms import ConfirmForm, PolicyForm, RenewCodesForm, SignInCodeForm, TurnOffForm

bp = Blueprint("two_factor", __name__)

#: The new-recovery-codes form's field prefix: its password and code fields sit on the page beside the
#: turn-off form's, and two fields may not share an id.
RENEW = "renew"


@bp.app_template_global()
def has_two_factor():
    """Whether a signing form shows the code field beside the password (the signer has two-factor on).
    It takes no argument: macros imported without context do not see current_user. Asked once a request
    (a checklist page has one override form per finding)."""
    if "has_two_factor" not in g:
        g.has_two_factor = current_user.is_authenticated and service.is_on(current_user.id)
    return g.has_two_factor


def _pending(now):
    """The half-signed-in state if it is still fresh; an expired one is dropped."""
    pending = session.get(service.PENDING)
    if not isinstance(pending, dict):
        return None
    age = now.timestamp() - pending.get("at", 0)
    if not 0 <= age <= service.PENDING_LIFETIME.total_seconds():
        session.pop(service.PENDING, None)
        flash("The sign-in took too long. Enter your username and password again.", "info")
        return None
    return pending


@bp.route("/login/code", methods=["GET", "POST"])
def sign_in_code():
    """The second step of a sign-in (public, as /login is): the code for the user whose password was right."""
    if current_user.is_authenticated:
        return redirect(url_for("core.home"))
    now = utcnow()
    pending = _pending(now)
    if pending is None:
        return redirect(url_for("auth.login"))
    form = SignInCodeForm()
    if form.validate_on_submit():
        result = service.complete_sign_in(pending["user_id"], form.code.data, ip=request.remote_addr, now=now,
                                          tablet=tablets.find_tablet(device_token()))
        if result.ok:
            return finish_sign_in(result.user, pending.get("next"))
        db.session.commit()
        form.code.errors.append(LOGIN_FAILED)
    return render_template("twofactor/code.html", form=form)


@bp.route("/account/two-factor")
@requires(can_change_own_password)
def account():
    return _account_page(200)


@bp.route("/account/two-factor/start", methods=["POST"])
@requires(can_change_own_password)
def start():
    return attempt(lambda: service.start_enrolment(current_user, actor=current_actor(), now=utcnow()),
                   done=lambda _: redirect(url_for("two_factor.account")), refused=_refused_to_account)


def _refused_to_account(error):
    for _field, message in error.errors:
        flash(message, "danger")
    return redirect(url_for("two_factor.account"))


@bp.route("/account/two-factor/confirm", methods=["POST"])
@requires(can_change_own_password)
def confirm():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _account_again(confirm_form=form)

    def enabled(codes):  # shown once, in this answer only: the database keeps their hashes
        session.pop(service.MUST_ENROL, None)
        return render_template("twofactor/recovery_codes.html", codes=codes)

    def refused(error):  # a wrong code was audited (two_factor.enrolment_failed) and is kept
        show_at_fields(form, error, "code")
        return _account_again(confirm_form=form)

    return attempt(lambda: service.confirm_enrolment(current_user, form.code.data, actor=current_actor(),
                                                     now=utcnow()), done=enabled, refused=refused)


def _account_again(**forms):
    return _account_page(400, **forms)


def _account_page(status, **forms):
    secret = service.pending_secret(current_user.id)
    forms = {"confirm_form": ConfirmForm(formdata=None), "off_form": TurnOffForm(formdata=None),
             "renew_form": RenewCodesForm(formdata=None, prefix=RENEW), **forms}
    return render_template(
        "twofactor/account.html", is_on=service.is_on(current_user.id), secret=secret,
        qr=secret and service.qr_data_uri(current_user, secret),
        codes_left=service.recovery_codes_left(current_user.id),
        is_required=service.is_required(current_user.role), **forms), status


@bp.route("/account/two-factor/off", methods=["POST"])
@requires(can_change_own_password)
def turn_off():
    form = TurnOffForm()
    if not form.validate_on_submit():
        return _account_again(off_form=form)

    def done(_):
        flash("Two-factor sign-in is off. Your other sessions were signed out.", "success")
        return redirect(url_for("two_factor.account"))

    def refused(error):
        show_at_fields(form, error, "code")
        return _account_again(off_form=form)

    return attempt(lambda: service.turn_off_with_recovery_code(
        current_user, password=form.password.data, code=form.code.data, token=current_user.session_token,
        actor=current_actor(), now=utcnow()), done=done, refused=refused)


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@requires(can_change_own_password)
def renew_codes():
    """New recovery codes in place of the old ones (password and a current code from the app)."""
    form = RenewCodesForm(prefix=RENEW)
    if not form.validate_on_submit():
        return _account_again(renew_form=form)

    def renewed(codes):  # shown once, in this answer only, like the first ones
        return render_template("twofactor/recovery_codes.html", codes=codes, renewed=True)

    def refused(error):
        show_at_fields(form, error, "code")
        return _account_again(renew_form=form)

    return attempt(lambda: service.renew_recovery_codes(current_user, password=form.password.data,
                                                        code=form.code.data, actor=current_actor(), now=utcnow()),
                   done=renewed, refused=refused)


@bp.route("/admin/two-factor", methods=["GET", "POST"])
@requires(can_manage_staff)
def policy():
    required = service.required_roles()
    form = PolicyForm(data={role: True for role in required})
    if not form.validate_on_submit():
        return render_template("twofactor/policy.html", form=form), 400 if form.is_submitted() else 200

    def saved(changed):
        flash("The two-factor policy is saved." if changed else "Nothing changed.", "success")
        return redirect(url_for("two_factor.policy"))

    return attempt(lambda: service.set_policy(form.required(), actor=current_actor(), now=utcnow()),
                   done=saved, refused=_refused_to_policy)


def _refused_to_policy(error):
    for _field, message in error.errors:
        flash(message, "danger")
    return redirect(url_for("two_factor.policy"))


@bp.route("/admin/staff/<int:user_id>/two-factor/reset", methods=["POST"])
@requires(can_manage_staff)
def reset(user_id):
    target = db.get_or_404(StaffUser, user_id)
    if not can_change_staff(current_user, target):  # one's own: with a recovery code, on one's own page
        abort(403)

    def done(_):
        flash(f"{target.username}'s two-factor sign-in is reset and they are signed out everywhere; "
              "they set it up again at their next sign-in.", "success")
        return redirect(url_for("admin.staff_detail", user_id=target.id))

    def refused(error):
        for _field, message in error.errors:
            flash(message, "danger")
        return redirect(url_for("admin.staff_detail", user_id=target.id))

    return attempt(lambda: service.reset_by_admin(target, actor=current_actor(), now=utcnow()),
                   done=done, refused=refused)
