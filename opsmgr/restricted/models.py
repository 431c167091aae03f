"""A patient's restriction, its care team, and each break-glass event."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class PatientRestriction(db.Model):
    """Whether a patient is restricted (only the care team sees more than the name), and the last change."""

    __tablename__ = "patient_restriction"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    is_restricted: Mapped[bool] = mapped_column(default=True)
    #: Why it was last changed ("a staff member", "public figure"): kept here, not in the audit details.
    reason: Mapped[str] = mapped_column(String(300))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: None when the demo seed or a command made the change.
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class CareTeamMember(db.Model):
    """A staff member who sees a restricted patient's record without breaking the glass."""

    __tablename__ = "care_team_member"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user = relationship("StaffUser")


class BreakGlassEvent(db.Model):
    """One clinician's emergency access to one restricted patient, open until `expires_at`."""

    __tablename__ = "break_glass_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    #: One of rules.break_glass.REASONS.
    reason: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when an admin has reviewed the event; until then it is listed on the admins' home.
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    user = relationship("StaffUser", foreign_keys=[user_id])
    patient = relationship("Patient")
