"""What a channel sends, how it fails, and which sender the configuration picks.

``email_sender(app)`` and ``sms_sender(app)`` return an SMTP or Twilio sender when those are
configured, otherwise one that writes ``.eml`` / ``.json`` files into ``OUTBOX_DIR`` (the
``make run`` default), so a clinic sees exactly what would be sent. Every sender has
``send(msg) -> provider_id``; the email senders also have ``send_many(msgs, on_result=None)``,
which returns one provider id or ``DeliveryError`` per message, in order, over one SMTP
connection, and calls ``on_result(index, result)`` as each is known.
"""
import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str
    #: The message's idempotency key (the outbox dedupe key); the ``Message-ID`` header is made
    #: from it, so a resend after a crash carries the same Message-ID and the file channel
    #: writes the same file.
    message_id: str


@dataclass(frozen=True)
class OutgoingSms:
    #: E.164, e.g. "+15551234567".
    to: str
    body: str
    #: Names the file in the file channel; Twilio has no idempotency key, so it keeps this
    #: nowhere and a resend after a crash is a second text (the engine flags it).
    idempotency_key: str
    #: Where Twilio reports delivery; None means ``{OPSMGR_PUBLIC_URL}/sms/status``.
    status_callback: str | None = None


class DeliveryError(Exception):
    """The channel did not take the message. ``permanent``: retrying the same message cannot
    help (a refused recipient, an invalid number); otherwise retry later (an outage, a 4xx
    SMTP reply, a timeout). ``code`` is the SMTP reply or Twilio error code when there is one.
    The message names codes and phases only, never a recipient or a body."""

    def __init__(self, message, *, permanent, code=None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_key(key):
    """A readable, collision-resistant token for a key: file names and Message-ID local parts."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    readable = _UNSAFE.sub("_", key).strip("_")[:80]
    return f"{readable}-{digest}" if readable else digest


def email_sender(app):
    """SMTP when OPSMGR_SMTP_HOST is set, otherwise ``.eml`` files in the outbox folder."""
    if app.config.get("SMTP_HOST"):
        from opsmgr.messaging.smtp import SmtpSender

        return SmtpSender(app.config)
    from opsmgr.messaging.files import EmailFileSender

    return EmailFileSender(app.config)


def sms_sender(app):
    """Twilio when OPSMGR_TWILIO_ACCOUNT_SID is set, otherwise ``.json`` files in the outbox folder."""
    if app.config.get("TWILIO_ACCOUNT_SID"):
        from opsmgr.messaging.sms import TwilioSender

        return TwilioSender(app.config)
    from opsmgr.messaging.files import SmsFileSender

    return SmsFileSender(app.config)


def status_callback(msg, config):
    """The URL Twilio reports this text's delivery to: the message's own, else {PUBLIC_URL}/sms/status."""
    if msg.status_callback:
        return msg.status_callback
    public_url = config.get("PUBLIC_URL")
    return f"{public_url.rstrip('/')}/sms/status" if public_url else None
