"""Protocols and infusion series."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

ROUTES = ("iv", "esketamine")
SERIES_STATUSES = ("planned", "active", "completed", "stopped")


class Protocol(db.Model):
    """One version of a treatment protocol; editing creates a new version, series keep theirs."""

    __tablename__ = "protocol"
    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_protocol_code_version"),
        CheckConstraint(f"route IN {ROUTES!r}", name="route_known"),
        CheckConstraint("planned_count >= 1", name="planned_count_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable identifier shared by every version, e.g. "iv-induction".
    code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(default=1)
    is_current: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str] = mapped_column(String(120))
    route: Mapped[str] = mapped_column(String(12))
    planned_count: Mapped[int]
    #: The rhythm: a list of {"weeks": n, "per_week": k}; the last phase repeats if more sessions are planned.
    phases: Mapped[list] = mapped_column(JSON)
    #: Warn when the whole series spans more days than this (None: no limit).
    max_span_days: Mapped[int | None]
    #: Warn when two consecutive sessions are further apart than this (None: no limit).
    max_gap_days: Mapped[int | None]
    dose_mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    dose_mg: Mapped[int | None]
    min_infusion_minutes: Mapped[int] = mapped_column(default=0)
    #: Minutes a chair is held: dosing plus observation and recovery.
    chair_minutes: Mapped[int]
    observation_minutes: Mapped[int] = mapped_column(default=0)
    #: Week of the series at which a physician review is due (None: none).
    review_week: Mapped[int | None]
    #: Days after the last session when the physician re-evaluates (boosters).
    reevaluate_after_days: Mapped[int | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    @property
    def label(self):
        return f"{self.name} (v{self.version})"


class InfusionSeries(db.Model):
    __tablename__ = "infusion_series"
    __table_args__ = (
        CheckConstraint(f"status IN {SERIES_STATUSES!r}", name="status_known"),
        CheckConstraint("planned_count >= 1", name="planned_count_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocol.id"))
    indication: Mapped[str] = mapped_column(String(20))
    dose_mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    dose_mg: Mapped[int | None]
    planned_count: Mapped[int]
    start_on: Mapped[date] = mapped_column(Date)
    #: The local clock time sessions are planned at; kept across daylight-saving changes.
    preferred_time: Mapped[str] = mapped_column(String(5))
    reevaluate_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")
    stop_reason: Mapped[str] = mapped_column(String(300), default="")
    #: Plan warnings at ordering time (gap, span), as shown to the physician.
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    ordered_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    protocol: Mapped[Protocol] = relationship()
    sessions: Mapped[list["InfusionSession"]] = relationship(  # noqa: F821 - defined in schedule.models
        back_populates="series", order_by="[InfusionSession.starts_at, InfusionSession.id]")

    __mapper_args__ = {"version_id_col": version}
