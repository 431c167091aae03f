"""Messages waiting to leave the building: written in the transaction, sent after it commits.

The table is the message queue. A row is one logical message (``dedupe_key`` is its idempotency
key); its status moves

    pending ─claim→ sending ─→ sent ─(provider callback)→ delivered
       │              │  └──→ pending (retry later) ─ … ─→ failed (last attempt, or refused for good)
       │              └─ lease expired → claimed again with possibly_duplicate set
       ├─→ cancelled  (re-planned: the session moved, was cancelled …; never sent)
       └─→ expired    (reached expires_at before it could go, e.g. the session has started; never sent late)
"""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

STATUSES = ("pending", "sending", "sent", "delivered", "failed", "cancelled", "expired")
#: Statuses a message never leaves.
FINAL_STATUSES = ("delivered", "failed", "cancelled", "expired")
CHANNELS = ("email", "sms", "staff")


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint(f"channel IN {CHANNELS!r}", name="channel_known"),
        CheckConstraint("(status = 'sending') = (claimed_until IS NOT NULL)", name="leased_while_sending"),
        CheckConstraint("status NOT IN ('sent', 'delivered') OR sent_at IS NOT NULL", name="sent_at_when_sent"),
        CheckConstraint("(status IN ('cancelled', 'expired')) = (closed_at IS NOT NULL)",
                        name="closed_at_when_closed"),
        # The dispatcher's question: what is pending and due, or sending on an expired lease?
        Index("ix_outbox_message_due", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Which registered handler sends it: "email", "sms" (the channel for patient and staff messages).
    kind: Mapped[str] = mapped_column(String(30))
    #: What the handler needs beyond the columns below, as a JSON object: ids, never credentials.
    payload: Mapped[dict] = mapped_column(JSON)
    #: The idempotency key: one logical message, one row however often it is enqueued
    #: ("reminder:session:42:24h"); the email's Message-ID and the SMS provider key derive from it.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    #: email, sms or staff; None for a bare side effect enqueued with ``enqueue()``.
    channel: Mapped[str | None] = mapped_column(String(10))
    #: The address or E.164 number it goes to (a staff message: the user id as text).
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(200))
    #: The rendered text, exactly as sent.
    body: Mapped[str | None] = mapped_column(Text)
    #: What the message is about, for re-planning and the worklist.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Not sent before this (the due time); pushed back after each failed attempt.
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Not sent at or after this (a reminder: its session's start); the claim marks it expired instead.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    #: Handler runs started (counted at the claim, so a run that crashed its process counts too).
    attempts: Mapped[int] = mapped_column(default=0)
    #: The last failure's exception class and a short message; never a traceback.
    last_error: Mapped[str | None] = mapped_column(String(300))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    #: The claim's lease: once past, another dispatcher may claim the message again.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when a claim whose lease expired is taken over: the first run may have reached the
    #: provider before its process died, so the patient may get this message twice.
    possibly_duplicate: Mapped[bool] = mapped_column(default=False, server_default=false())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The provider's id for the accepted message (Twilio's SM…, the SMTP Message-ID, a file name).
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    #: When and why it was cancelled or expired.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(200))
