"""Deny by default: every endpoint names the permission that opens it, or it stays shut.

``requires(predicate)`` marks a view. A global before-request hook enforces login for every
endpoint not in PUBLIC_ENDPOINTS, then the marked predicate; an unmarked endpoint is refused.
"""
from flask import abort, current_app, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound

from opsmgr.extensions import db

#: Reachable without a login. Everything else needs a signed-in user and a permission.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "two_factor.sign_in_code", "static", "core.healthz"})
#: Reachable without a login session because they check a secret token themselves.
TOKEN_ENDPOINTS = frozenset({"feeds.clinic_feed", "feeds.chair_feed"})

#: The only unauthenticated POSTs: Twilio's inbound-SMS and delivery-status webhooks (opsmgr.messaging.views).
#: Twilio has no login and no CSRF token, so instead of a permission each request must carry a valid
#: X-Twilio-Signature for OPSMGR_PUBLIC_URL, checked here before the view runs; anything else is 403.
WEBHOOK_ENDPOINTS = frozenset({"messaging.sms_inbound", "messaging.sms_status"})

#: Reachable while a password change is pending.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "static"})

#: Flask session keys: the half-signed-in state ({user_id, at, next}), and "set up two-factor before anything
#: else" (opsmgr.twofactor.service names them PENDING and MUST_ENROL).
TWO_FACTOR_PENDING, TWO_FACTOR_MUST_ENROL = "two_factor_pending", "two_factor_must_enrol"

#: Reachable by someone whose role signs in with two factors and who has none yet (TWO_FACTOR_MUST_ENROL).
#: core.ping too: pages ask it before they post, and it says only that the sign-in is live.
TWO_FACTOR_ENROL_ENDPOINTS = frozenset({"two_factor.account", "two_factor.start", "two_factor.confirm",
                                        "auth.logout", "core.ping", "static"})

#: Reachable while a chair tablet's screen is locked: the PIN, "Not you?" (sign out), the lock itself.
#: Every other request of a locked session gets the lock page (JSON: 401), whatever its permission.
LOCKED_SCREEN_ENDPOINTS = frozenset({"auth.unlock", "auth.lock", "auth.logout", "static", "core.healthz",
                                     *TOKEN_ENDPOINTS, *WEBHOOK_ENDPOINTS})


def setup_step_pending():
    """What a signed-in user must do before anything else: "password" (an admin set it, or it expired),
    "two_factor" (the role signs in with two factors and this user has none yet), or None. The hook
    below sends every other request there; the navigation shows only the way out (templates/base.html)."""
    if not current_user.is_authenticated:
        return None
    if current_user.must_change_password:
        return "password"
    if session.get(TWO_FACTOR_MUST_ENROL):
        return "two_factor"
    return None


def requires(predicate):
    """Mark a view with the permission predicate (user -> bool) that every request must pass."""

    def mark(view):
        view.permission = predicate
        return view

    return mark


class OutOfScope(NotFound):
    """An object that exists but not under the URL's parent (another session's reading, another
    patient's medication): answered as not found, so the answer confirms nothing, and audited as a
    denial (core.errors)."""

    def __init__(self, object_type, object_id):
        super().__init__()
        self.object_type, self.object_id = object_type, object_id


def child_or_404(model, child_id, **parent):
    """The `model` row `child_id` when it belongs to the URL's parent (`session_id=visit.id`): 404 when
    there is no such row, OutOfScope when it belongs to another."""
    child = db.session.get(model, child_id) or abort(404)
    if any(getattr(child, name) != value for name, value in parent.items()):
        raise OutOfScope(model.__tablename__, child_id)
    return child


def background(view):
    """Mark a view a page polls on its own (the live board): its requests do not count as the user's
    activity, so an unattended page still reaches the idle sign-out."""
    view.background = True
    return view


def is_background(endpoint):
    return getattr(current_app.view_functions.get(endpoint), "background", False)


def permission_for(endpoint):
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "permission", None)


def _signed_by_twilio():
    from opsmgr.messaging.sms import verify_twilio  # imported on use: the Twilio library is large

    return verify_twilio(request)


def _locked_screen():
    from opsmgr.auth.views import locked_screen  # imported on use: auth's views import this module

    return locked_screen()


def enforce_access():
    """The before-request guard: public, or signed in and permitted; otherwise refused."""
    endpoint = request.endpoint
    if endpoint not in LOCKED_SCREEN_ENDPOINTS and getattr(current_user, "is_screen_locked", False):
        return _locked_screen()
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or endpoint in TOKEN_ENDPOINTS:
        return None
    if endpoint in WEBHOOK_ENDPOINTS:
        return None if _signed_by_twilio() else abort(403)
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    pending = setup_step_pending()
    if pending == "password" and endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        return redirect(url_for("auth.change_password"))
    if pending == "two_factor" and endpoint not in TWO_FACTOR_ENROL_ENDPOINTS:
        return redirect(url_for("two_factor.account"))
    predicate = permission_for(endpoint)
    if predicate is None or not predicate(current_user):
        abort(403)
    return None
