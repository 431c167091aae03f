"""Audit rows and the chain head kept outside them."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class AuditEvent(db.Model):
    """One audited action. Rows are never updated or deleted (database triggers refuse it)."""

    __tablename__ = "audit_event"
    __table_args__ = (CheckConstraint("outcome IN ('ok', 'denied')", name="outcome_known"),)

    #: Assigned by the appender under the chain lock, so ids are gap-free and in chain order.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(10))
    ip: Mapped[str | None] = mapped_column(String(64))
    #: Canonical JSON of small structured facts; never clinical free text.
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    #: HMAC-SHA256 over prev_hash and this row's canonical content, keyed by OPSMGR_AUDIT_KEY.
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(db.Model):
    """The newest chain link, kept apart from the rows so a cut-off tail is caught."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
