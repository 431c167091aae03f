"""A physician's override of one finding at one gate (the start of the dose, or the discharge)."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

GATES = ("start", "discharge")


class FindingOverride(db.Model):
    """A physician's override of one finding at one gate, after re-entering their password."""

    __tablename__ = "finding_override"
    __table_args__ = (
        UniqueConstraint("session_id", "gate", "code", name="uq_finding_override_session_gate_code"),
        CheckConstraint(f"gate IN {GATES!r}", name="gate_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    gate: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(60))
    #: The finding as it stood when overridden (severity, message, values).
    finding: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    physician_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
