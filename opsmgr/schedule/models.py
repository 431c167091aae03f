"""Chairs, clinic hours and closures, and the clinic's scheduling settings (the session itself:
opsmgr.sessions)."""
from datetime import date, datetime, time

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class Chair(db.Model):
    __tablename__ = "chair"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class ClinicDay(db.Model):
    """Opening hours for one weekday (0 = Monday), in the clinic's local time."""

    __tablename__ = "clinic_day"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint("opens_at < closes_at", name="opens_before_closing"),
    )

    weekday: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    is_open: Mapped[bool] = mapped_column(default=True)
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)


class ClinicClosure(db.Model):
    """A day the clinic is closed although its weekday is open (a holiday an administrator entered):
    nothing is booked on it."""

    __tablename__ = "clinic_closure"

    id: Mapped[int] = mapped_column(primary_key=True)
    closed_on: Mapped[date] = mapped_column(Date, unique=True)
    #: What staff see, e.g. "Christmas Day".
    label: Mapped[str] = mapped_column(String(80))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClinicSetting(db.Model):
    """The clinic's scheduling settings (one row)."""

    __tablename__ = "clinic_setting"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Minutes to clean and reset a chair between two sessions.
    turnover_minutes: Mapped[int] = mapped_column(default=15)
    #: Whether staff calendar feeds may carry patient names (off by default: minimum necessary).
    ical_patient_names: Mapped[bool] = mapped_column(default=False)
