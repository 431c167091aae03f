"""Twilio's webhooks (a patient's SMS reply, a text's delivery status) and confirming a session by phone.

The two webhooks are the only unauthenticated POSTs in the app: no login and no CSRF token (Twilio
has neither). The route guard lets them through only with a valid X-Twilio-Signature for
OPSMGR_PUBLIC_URL (core.guard.WEBHOOK_ENDPOINTS); anything else is a 403, audited, changing nothing.
"""
from xml.sax.saxutils import escape

from flask import Blueprint, Response, flash, redirect, request, url_for

from opsmgr.core import submissions
from opsmgr.core.clock import utcnow
from opsmgr.core.guard import requires
from opsmgr.core.web import attempt, current_actor
from opsmgr.extensions import csrf, db
from opsmgr.messaging import confirmations, inbound
from opsmgr.permissions import can_record_confirmation
from opsmgr.sessions.service import session_or_404

bp = Blueprint("messaging", __name__)


def twiml(reply=None):
    """Twilio's answer: an empty <Response/>, or one <Message> sent back to the patient."""
    body = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    content_type="text/xml; charset=utf-8")


@bp.route("/sms/inbound", methods=["POST"])
@csrf.exempt
@submissions.exempt
def sms_inbound():
    answer = inbound.handle_reply(request.form.get("From", ""), request.form.get("Body", ""),
                                  actor=inbound.twilio_actor(request.remote_addr), now=utcnow())
    db.session.commit()
    return twiml(answer.reply)


@bp.route("/sms/status", methods=["POST"])
@csrf.exempt
@submissions.exempt
def sms_status():
    form = request.form
    inbound.record_status(form.get("MessageSid", ""), form.get("MessageStatus", ""), form.get("ErrorCode"),
                          actor=inbound.twilio_actor(request.remote_addr), now=utcnow())
    db.session.commit()
    return "", 204


@bp.route("/sessions/<int:session_id>/confirmation", methods=["POST"])
@requires(can_record_confirmation)
def confirm_session(session_id):
    visit = session_or_404(session_id)

    def done(_):
        flash("Confirmation recorded.", "success")
        return redirect(url_for("schedule.session_detail", session_id=session_id))

    def refused(error):
        for _field, message in error.errors:
            flash(message, "danger")
        return redirect(url_for("schedule.session_detail", session_id=session_id))

    return attempt(lambda: confirmations.record_confirmation(visit, via=request.form.get("via", ""),
                                                             actor=current_actor(), now=utcnow()),
                   done=done, refused=refused)
