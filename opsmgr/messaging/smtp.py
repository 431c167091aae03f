"""Email through SMTP with smtplib: STARTTLS, implicit TLS or plain; one connection per batch.

A reply of 5xx to MAIL, RCPT or DATA refuses that message for good; a 4xx, a dropped connection,
a timeout or a server that cannot be reached is worth a retry. A 5xx while connecting (a refused
login, a greeting of 554) is the server's configuration, not the message's fault, so it is
retried too: fixing the configuration then delivers the queue.

A connection that drops in a batch is opened again once for the message that met the drop (a
server that closes after N messages answers 421); a message that fails on a fresh connection
ends the batch and the rest are left for a retry. If the drop came after the server had taken
the message, the resend carries the same Message-ID, so the recipient's mail system can tell.
"""
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from opsmgr.core.clock import system_now
from opsmgr.messaging.channels import DeliveryError, safe_key

log = logging.getLogger(__name__)

TIMEOUT = 30  # seconds for the connection and each SMTP command
FALLBACK_FROM = "reminders@opsmgr.invalid"
_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


def message_id_header(key, mail_from):
    """``<key@domain of the sender>``: the same key always gives the same Message-ID."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "opsmgr.invalid"
    return f"<{safe_key(key)}@{domain}>"


def build_email(msg, *, mail_from, now):
    """The full RFC 5322 message; DeliveryError(permanent) if a header cannot be written."""
    try:
        email = EmailMessage()
        email["From"] = mail_from
        email["To"] = msg.to
        email["Subject"] = msg.subject
        email["Date"] = format_datetime(now)
        email["Message-ID"] = message_id_header(msg.message_id, mail_from)
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to reminders
        email.set_content(msg.body)
    except (ValueError, TypeError) as error:  # a line break in a header, an unusable address
        raise DeliveryError(f"the email cannot be written ({type(error).__name__})", permanent=True) from None
    return email


class SmtpSender:
    def __init__(self, config):
        self.host = config["SMTP_HOST"]
        self.port = config["SMTP_PORT"]
        self.security = config["SMTP_SECURITY"]
        self.user = config.get("SMTP_USER")
        self.password = config.get("SMTP_PASSWORD") or ""
        self.ca_file = config.get("SMTP_CA_FILE")
        self.mail_from = config.get("MAIL_FROM") or FALLBACK_FROM
        self.clock = config.get("CLOCK") or system_now

    def send(self, msg):
        """Send one message on a connection of its own; returns its Message-ID or raises DeliveryError."""
        (result,) = self.send_many([msg])
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_many(self, msgs, on_result=None):
        """Send over one connection; one Message-ID or DeliveryError per message, in order.

        ``on_result(index, result)``, if given, is called as each result is known, while the
        connection is still open, so a caller can record it before the next message goes.
        """
        results = []

        def done(result):
            results.append(result)
            if on_result is not None:
                on_result(len(results) - 1, result)

        connection = None
        broken = None  # the error that ended the batch; the rest get a retryable copy
        try:
            for msg in msgs:
                if broken is not None:
                    done(DeliveryError(str(broken), permanent=False, code=broken.code))
                    continue
                try:
                    email = build_email(msg, mail_from=self.mail_from, now=self.clock())
                except DeliveryError as error:
                    done(error)
                    continue
                result, connection = self._deliver(email, connection)
                if isinstance(result, DeliveryError) and connection is None:
                    broken = result
                done(result)
        finally:
            _close(connection)
        refused = sum(isinstance(r, DeliveryError) and r.permanent for r in results)
        retry = sum(isinstance(r, DeliveryError) and not r.permanent for r in results)
        log.info("SMTP batch: %d sent, %d refused, %d left for a retry", len(results) - refused - retry,
                 refused, retry)
        return results

    def _deliver(self, email, connection):
        """(Message-ID or DeliveryError, the connection to go on with or None when it is gone).

        Loops at most twice: only a drop on a reused connection is tried again, on a fresh one.
        """
        while True:
            reused = connection is not None
            if connection is None:
                try:
                    connection = self._connect()
                except OSError as error:  # smtplib's errors are OSErrors too
                    return _unavailable(error), None
            try:
                connection.send_message(email)
            except OSError as error:
                if not _dropped(error):
                    return _refused(error), connection
                _close(connection)
                connection = None
                if not reused:
                    return _unavailable(error), None
                log.info("SMTP connection dropped (%s); connecting again", type(error).__name__)
            else:
                return email["Message-ID"], connection

    def _connect(self):
        # Loading the CA store takes longer than sending a reminder: only when the connection is encrypted.
        context = ssl.create_default_context(cafile=self.ca_file) if self.security in ("tls", "starttls") else None
        if self.security == "tls":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        try:
            if self.security == "starttls":
                connection.starttls(context=context)
            if self.user:
                connection.login(self.user, self.password)
        except BaseException:
            _close(connection)
            raise
        return connection


def _close(connection):
    if connection is None:
        return
    try:
        connection.quit()
    except OSError:
        connection.close()


def _reply(error):
    """(code, enhanced status) of an SMTP reply in the error, or (None, None)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, text = next(iter(error.recipients.values()))
    elif isinstance(error, smtplib.SMTPResponseException):
        code, text = error.smtp_code, error.smtp_error
    else:
        return None, None
    text = text if isinstance(text, bytes) else str(text).encode()
    match = _ENHANCED_STATUS.match(text)
    return code, match.group(1).decode() if match else None


def _dropped(error):
    code, _ = _reply(error)
    return code == 421 or isinstance(error, smtplib.SMTPServerDisconnected) or not isinstance(
        error, smtplib.SMTPException)


_PHASES = ((smtplib.SMTPRecipientsRefused, "recipient refused"), (smtplib.SMTPSenderRefused, "sender refused"),
           (smtplib.SMTPDataError, "message refused"))


def _refused(error):
    """A reply about this message: 5xx permanent, anything else retryable. Codes only, no addresses."""
    code, status = _reply(error)
    phase = next((name for kind, name in _PHASES if isinstance(error, kind)), type(error).__name__)
    permanent = code is not None and 500 <= code < 600
    return DeliveryError(f"SMTP {code or '-'}{' ' + status if status else ''}: {phase}", permanent=permanent,
                         code=code)


def _unavailable(error):
    code, status = _reply(error)
    detail = f" {code}{' ' + status if status else ''}" if code else ""
    return DeliveryError(f"SMTP server unavailable: {type(error).__name__}{detail}", permanent=False, code=code)
