"""The channel when nothing is configured: each message as a file in the outbox folder.

``<OUTBOX_DIR>/<UTC time>-<safe key>.eml`` holds the full RFC 5322 message and ``….json`` the
form Twilio would have been posted (To, From or MessagingServiceSid, Body, StatusCallback). A
file is written to a temporary name and renamed, so a reader never sees half a message, and one
key gives one file however often it is sent (a lock file serialises writers). Files are mode 600:
they hold what a patient would read.
"""
import fcntl
import json
import os
import tempfile
from datetime import UTC
from pathlib import Path

from opsmgr.core.clock import system_now
from opsmgr.messaging.channels import DeliveryError, safe_key, status_callback
from opsmgr.messaging.smtp import FALLBACK_FROM, build_email

STAMP = "%Y%m%dT%H%M%SZ"
STAMP_WIDTH = len("20261205T020304Z")


class _FileSender:
    suffix = ""

    def __init__(self, config):
        self.config = config
        self.folder = Path(config["OUTBOX_DIR"])
        self.clock = config.get("CLOCK") or system_now

    def _write(self, key, content):
        """Write ``content`` once for ``key``; returns the provider id ``file:<name>``."""
        tail = f"-{safe_key(key)}{self.suffix}"
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.folder / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                existing = sorted(self.folder.glob("?" * STAMP_WIDTH + tail))
                if existing:
                    return f"file:{existing[0].name}"
                name = self.clock().astimezone(UTC).strftime(STAMP) + tail
                _write_atomically(self.folder, name, content)
        except OSError as error:
            raise DeliveryError(f"the outbox folder cannot be written ({type(error).__name__})",
                                permanent=False) from None
        return f"file:{name}"


def _write_atomically(folder, name, content):
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")  # mode 600
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class EmailFileSender(_FileSender):
    suffix = ".eml"

    def send(self, msg):
        email = build_email(msg, mail_from=self.config.get("MAIL_FROM") or FALLBACK_FROM, now=self.clock())
        return self._write(msg.message_id, email.as_bytes())

    def send_many(self, msgs, on_result=None):
        """As SmtpSender.send_many: one provider id or DeliveryError per message, in order."""
        results = []
        for index, msg in enumerate(msgs):
            try:
                results.append(self.send(msg))
            except DeliveryError as error:
                results.append(error)
            if on_result is not None:
                on_result(index, results[-1])
        return results


class SmsFileSender(_FileSender):
    suffix = ".json"

    def send(self, msg):
        service = self.config.get("TWILIO_MESSAGING_SERVICE_SID")
        sender = {"MessagingServiceSid": service} if service else {"From": self.config.get("TWILIO_FROM")}
        form = {"To": msg.to, **sender, "Body": msg.body, "StatusCallback": status_callback(msg, self.config),
                "IdempotencyKey": msg.idempotency_key}
        content = json.dumps(form, indent=2, ensure_ascii=False).encode() + b"\n"
        return self._write(msg.idempotency_key, content)
