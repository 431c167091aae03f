"""The infusion session: the root of the aggregate that the checklist, the dose, the vitals, the
discharge and the note hang from (their rows carry its id and are locked with it once signed)."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, and_, func, or_, select, text
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db
from opsmgr.rules.session_states import ACTIVE_STATES, SessionState
from opsmgr.schedule.models import Chair

STATE_VALUES = tuple(state.value for state in SessionState)
_ACTIVE_SQL = "status IN (" + ", ".join(sorted(f"'{s.value}'" for s in ACTIVE_STATES)) + ")"


class InfusionSession(db.Model):
    """One planned or held session of a series, on one chair."""

    __tablename__ = "infusion_session"
    __table_args__ = (
        CheckConstraint(f"status IN {STATE_VALUES!r}", name="status_known"),
        CheckConstraint("starts_at < ends_at", name="starts_before_it_ends"),
        # Belt and braces with the row locks in the booking service: one live session per chair start.
        Index("uq_infusion_session_chair_start_active", "chair_id", "starts_at", unique=True,
              sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_infusion_session_starts_at", "starts_at"),
        # Worklists ask for the few sessions in a state (waiting at the checklist, in recovery) among years;
        # the week's counts ask for the live states within a week: one index serves both (without the
        # time in it, SQLite walked every live session of every year to count one week's).
        Index("ix_infusion_session_status_starts_at", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("infusion_series.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    chair_id: Mapped[int] = mapped_column(ForeignKey("chair.id"), index=True)
    #: Booking order within the series, kept because signed records include it; staff see `number`.
    sequence: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=SessionState.SCHEDULED.value)
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    #: Why a physician recorded this session after it happened (None: booked ahead, as usual).
    recorded_late_reason: Mapped[str | None] = mapped_column(String(300))
    #: A physician's reason for a second infusion on the patient's clinic day, and who gave it.
    same_day_reason: Mapped[str | None] = mapped_column(String(300))
    same_day_override_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    series = relationship("InfusionSeries", back_populates="sessions")
    patient = relationship("Patient")
    chair: Mapped[Chair] = relationship()

    __mapper_args__ = {"version_id_col": version}

    @property
    def state(self):
        return SessionState(self.status)

    @property
    def is_recorded_late(self):
        return self.recorded_late_reason is not None


_other = InfusionSession.__table__.alias("same_series")
#: The session's number in its series by date (1 = the earliest), worked out in the statement that
#: loads the session, so moving or recording a session renumbers the series and no page adds queries.
InfusionSession.number = column_property(
    select(func.count(_other.c.id)).where(
        _other.c.series_id == InfusionSession.series_id,
        or_(_other.c.starts_at < InfusionSession.starts_at,
            and_(_other.c.starts_at == InfusionSession.starts_at, _other.c.id <= InfusionSession.id)))
    .correlate_except(_other).scalar_subquery())
