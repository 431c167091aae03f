"""The outbox handlers of the "email" and "sms" kinds: a claimed message to opsmgr.messaging's senders.

The senders are imported inside the handlers, so the outbox imports without them. The idempotency
key travels with every attempt: the email's Message-ID is made from it (a resend after a crash
carries the same one), and the SMS file channel names its file after it.

Email goes in batches over one SMTP connection; the sender calls back with each message's result
while the connection is still open, and the engine commits it before the next message goes, so a
crash mid-batch repeats at most the message in flight.
"""
from flask import current_app

#: How many due emails one claim takes, sent over one SMTP connection.
EMAIL_BATCH = 50


def built_in_handlers():
    """The handler table an app starts with; register() adds or replaces kinds."""
    from opsmgr.outbox.service import _batch

    return {"email": send_email, "sms": send_sms, _batch("email"): (send_emails, EMAIL_BATCH)}


def _email(message):
    from opsmgr.messaging.channels import OutgoingEmail

    return OutgoingEmail(to=message.recipient, subject=message.subject or "", body=message.body,
                         message_id=message.dedupe_key or f"outbox:{message.id}")


def send_email(message):
    from opsmgr.messaging.channels import email_sender

    return email_sender(current_app).send(_email(message))


def send_emails(messages, report):
    """One SMTP connection for the batch; each message's result reported as soon as the server answers."""
    from opsmgr.messaging.channels import email_sender

    email_sender(current_app).send_many([_email(message) for message in messages],
                                        on_result=lambda index, result: report(messages[index], result))


def send_sms(message):
    from opsmgr.messaging.channels import OutgoingSms, sms_sender

    return sms_sender(current_app).send(OutgoingSms(
        to=message.recipient, body=message.body, idempotency_key=message.dedupe_key or f"outbox:{message.id}"))
