"""Stored follow-up items: one row per planned item, keyed so that a re-plan never adds one twice."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

#: open: to work; done: worked with an outcome; escalated: handed to a physician, who closes it (done);
#: cancelled: no longer wanted (the session moved, was cancelled, …); expired: pointless by now.
STATUSES = ("open", "escalated", "done", "cancelled", "expired")
OPEN = ("open", "escalated")
KINDS = ("checkin_call", "first_session_call", "phq9_request", "induction_review", "booster_review", "rems_form",
         "unsigned_note")


class FollowUp(db.Model):
    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint(f"kind IN {KINDS!r}", name="kind_known"),
        CheckConstraint("for_role IN ('coordinator', 'physician')", name="role_known"),
        CheckConstraint("misses >= 0", name="misses_not_negative"),
        CheckConstraint("(status = 'done') = (closed_at IS NOT NULL)", name="closed_when_done"),
        # The worklist's question: what is open, by due time.
        Index("ix_follow_up_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable across re-plans (rules.followups): "checkin_call:session:42".
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_series.id"))
    score_id: Mapped[int | None]
    for_role: Mapped[str] = mapped_column(String(12))
    #: Shown on the worklist from `remind_at` (or `due_at`); overdue from `overdue_at`.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="open")
    #: Calls not reached so far; the policy's count escalates.
    misses: Mapped[int] = mapped_column(default=0)
    #: Escalated to this physician (None: any physician on duty).
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    escalation_note: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    #: REMS Patient Monitoring Form: when and how it was submitted.
    rems_submitted_on: Mapped[date | None] = mapped_column(Date)
    rems_method: Mapped[str | None] = mapped_column(String(10))
    cancel_reason: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    version: Mapped[int] = mapped_column(default=1)

    patient = relationship("Patient")
    session = relationship("InfusionSession")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_open(self):
        return self.status in OPEN
