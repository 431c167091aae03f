"""Error pages that never show a stack trace; refusals are audited."""
import logging
import traceback

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from opsmgr.audit.service import record
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import OutOfScope
from opsmgr.core.web import current_actor
from opsmgr.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your role does not give access to this page. This attempt was recorded."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "This page does not accept that kind of request."),
    409: ("Conflict", "This could not be done in the record's current state."),
    413: ("Too large", "What you sent is larger than the clinic's limit."),
    500: ("Something went wrong", "The error was recorded. Your last action may not have been saved; "
                                 "check before repeating it."),
}


def _page(code, title=None, text=None):
    default_title, default_text = MESSAGES.get(code, MESSAGES[500])
    return render_template("errors/error.html", code=code, title=title or default_title,
                           text=text or default_text), code


def _audit_denied(action, details, **fields):
    db.session.rollback()
    record(action, actor=current_actor(), now=utcnow(), outcome="denied", details=details, **fields)
    db.session.commit()


def handle_http(error):
    if error.code == 403:
        _audit_denied("access.denied", {"endpoint": request.endpoint or "", "method": request.method})
    elif isinstance(error, OutOfScope):  # an id of another parent's object: a 404 that is a denial
        _audit_denied("access.denied", {"endpoint": request.endpoint or "", "method": request.method,
                                        "reason": "out_of_scope"},
                      object_type=error.object_type, object_id=error.object_id)
    return _page(error.code or 500)


def _wants_json():
    return request.accept_mimetypes.best == "application/json"


def handle_csrf(error):
    _audit_denied("csrf.failed", {"endpoint": request.endpoint or "", "reason": error.description[:120]})
    if _wants_json():  # a page's script: it keeps what was typed and reloads for a fresh token
        return jsonify(status="expired", message="The form expired; reload the page."), 400
    return _page(400, "Form expired or invalid",
                 "The form could not be accepted because its security token was missing or expired. "
                 "Reload the page and submit again.")


class RecordLocked(Exception):
    """A change to a signed record: refused whatever path it came by (raised before any write)."""

    def __init__(self, object_type, object_id, message):
        super().__init__(message)
        self.object_type = object_type
        self.object_id = object_id


def handle_locked(error):
    db.session.rollback()
    record("record.change_refused", actor=current_actor(), now=utcnow(), outcome="denied",
           object_type=error.object_type, object_id=error.object_id,
           details={"endpoint": request.endpoint or "", "reason": "signed"})
    db.session.commit()
    if _wants_json():
        return jsonify(status="refused", message=str(error)), 409
    return _page(409, "Signed: no changes", str(error))


def handle_unexpected(error):
    db.session.rollback()
    # The type and the frames only: exception messages can carry patient data.
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("unhandled %s at %s %s\n%s", type(error).__name__, request.method, request.endpoint, frames)
    return _page(500)


def register_errors(app):
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(RecordLocked, handle_locked)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)
