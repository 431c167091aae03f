"""A physician task raised by a checklist finding (PHQ-9 item 9, an elevated suicide-risk screen), or by
the item 9 of a PHQ-9 taken by phone (then it names the score, not a session)."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

#: What the finding asks of the physician (the rules' `task` value).
TASK_KINDS = ("same_day_physician_review", "call_physician")


class PhysicianTask(db.Model):
    __tablename__ = "physician_task"
    __table_args__ = (
        # One task per finding per session, however often the checklist is saved.
        UniqueConstraint("session_id", "code", name="uq_physician_task_session_code"),
        # One task per finding per phone score.
        UniqueConstraint("score_id", "code", name="uq_physician_task_score_code"),
        CheckConstraint("session_id IS NOT NULL OR score_id IS NOT NULL", name="has_origin"),
        CheckConstraint(f"kind IN {TASK_KINDS!r}", name="kind_known"),
        CheckConstraint("(resolved_at IS NULL) = (resolved_by_id IS NULL)", name="resolved_together"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The session whose checklist raised it; None for a task raised by a phone score.
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"))
    #: The phone score that raised it (a checklist's task names its session instead).
    score_id: Mapped[int | None] = mapped_column(ForeignKey("score.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    #: The finding's stable code, e.g. PHQ9_ITEM9_POSITIVE.
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(30))
    #: The finding's message as it stood when the task was raised.
    message: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The clinic-local day the task was raised on: it is due that same day.
    due_on: Mapped[date] = mapped_column(Date)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    resolution_note: Mapped[str] = mapped_column(Text, default="")
