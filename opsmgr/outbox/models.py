"""Messages waiting to leave the building: written in the transaction, sent after it commits."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

STATUSES = ("pending", "sending", "sent", "failed")


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint("(status = 'sending') = (claimed_until IS NOT NULL)", name="leased_while_sending"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_at_when_sent"),
        # The dispatcher's question: what is pending and due, or sending on an expired lease?
        Index("ix_outbox_message_due", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Which registered handler sends it: "email", "sms".
    kind: Mapped[str] = mapped_column(String(30))
    #: What the handler needs, as a JSON object: ids and wording, never credentials.
    payload: Mapped[dict] = mapped_column(JSON)
    #: One logical message, one row however often it is enqueued: "reminder:session:42:24h".
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Not sent before this; pushed back after each failed attempt.
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    #: Handler runs started (counted at the claim, so a run that crashed its process counts too).
    attempts: Mapped[int] = mapped_column(default=0)
    #: The last failure's exception class and a short message; never a traceback.
    last_error: Mapped[str | None] = mapped_column(String(300))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    #: The claim's lease: once past, another dispatcher may claim the message again.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
