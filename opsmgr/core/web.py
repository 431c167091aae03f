"""Request plumbing: who is acting, the security headers, the session hook."""
from urllib.parse import urlsplit

from flask import current_app, flash, g, jsonify, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from opsmgr.audit.service import Actor
from opsmgr.core import submissions
from opsmgr.core.refusals import DomainError
from opsmgr.extensions import db
from opsmgr.rules.findings import Problem

#: What a refusal says when a concurrent write, not a rule, stopped the action.
CONCURRENT = ("Someone else saved a change here at the same moment, so nothing of yours was saved. "
              "Check the page and try again.")

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])


def current_actor():
    """The signed-in staff member (or the anonymous caller) with the client's address."""
    if current_user.is_authenticated:
        return Actor(current_user.id, current_user.username, current_user.role, request.remote_addr)
    return Actor(None, None, None, request.remote_addr)


def set_security_headers(response):
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config["HTTPS"]:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.endpoint != "static":
        # Nothing behind the login may stay in a browser or proxy cache (ONC (d)(7), ASVS 14.3.2).
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def safe_next(target):
    """A same-site path to return to after login, or None (never an absolute or scheme URL, nor one with
    a control character: CR/LF cannot go into a Location header, and browsers drop tabs and newlines
    from a URL, so a tab between two slashes would leave the site)."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if any(ord(character) < 0x20 or 0x7F <= ord(character) < 0xA0 for character in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def attempt(call, *, done, refused, conflict=None):
    """One user action is one transaction: run the service call, answer `done(result)`, remember that
    answer for the form's submission key (core.submissions) and commit once.
    A refusal (DomainError) keeps only what it audited, and no key, and answers `refused(error)`; a
    concurrent write (a unique index, a stale version) rolls back and answers `conflict(error)`, or
    without one `refused` with a DomainError saying so: `refused` is only ever given a DomainError."""
    flashed = len(session.get("_flashes", ()))
    try:
        result = call()
        answer = done(result)
        submissions.remember(answer, session.get("_flashes", [])[flashed:])
        db.session.commit()
    except (IntegrityError, StaleDataError) as error:
        db.session.rollback()
        if "_flashes" in session:
            session["_flashes"] = session["_flashes"][:flashed]
        replay = submissions.reclaim()
        if replay is not None:
            return replay
        return conflict(error) if conflict else refused(DomainError([Problem(None, CONCURRENT)]))
    except DomainError as error:
        submissions.release()
        commit_audit_only(error)
        return refused(error)
    return answer


def show_at_fields(form, error, default=None):
    """Put each problem of a refusal next to its form field; one naming no field of this form goes to
    `default`, or without one above the page (flashed)."""
    for field, message in error.errors:
        name = field if field in form else default
        if name is None:
            flash(message, "danger")
        else:
            form[name].errors = [*form[name].errors, message]


def commit_audit_only(error):
    """After a refused action: keep what an audited refusal wrote (its audit event, a wrong password's
    count toward lockout), which is all the service wrote before refusing; undo anything else."""
    if getattr(error, "audited", False):
        db.session.commit()
    else:
        db.session.rollback()


def unauthorized():
    """Send a visitor without a live session to the login page, saying why when we know."""
    reason = g.get("session_end_reason")
    if reason in {"idle", "absolute"}:
        flash("You were signed out because your session timed out. Please sign in again.", "info")
    elif reason == "deactivated":
        flash("Your account is no longer active.", "warning")
    else:
        flash("Please sign in to continue.", "info")
    session.pop("_user_id", None)
    if request.accept_mimetypes.best == "application/json":
        # A page's script (the note autosave) learns it must sign in again, instead of getting a page.
        return jsonify(status="signed_out", login=url_for("auth.login")), 401
    target = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target))
