"""Dose, controlled substance, vitals, alerts and discharge of one infusion session."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import EnteredInError, UTCDateTime, entered_in_error_check
from opsmgr.extensions import db

ACK_ACTIONS = ("continue", "slow", "pause", "stop")
EVENT_KINDS = ("pause", "resume", "stop")


class DoseOrder(db.Model):
    """A physician's order of this session's dose, in place of the series dose: who, when, why, and
    the policy version it was ordered under. Orders are kept; the latest one is the dose to give."""

    __tablename__ = "dose_order"
    __table_args__ = (CheckConstraint("(mg_per_kg IS NULL) <> (dose_mg IS NULL)", name="one_dose_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    #: IV: mg per kg of today's weight.
    mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    #: Esketamine: the dose in mg (whole devices).
    dose_mg: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    reason: Mapped[str] = mapped_column(String(300))
    ordered_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[int | None]


class DoseRecord(db.Model):
    __tablename__ = "dose_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), unique=True)
    mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    dose_mg: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    infusion_minutes: Mapped[int | None]
    #: Set when a physician changed the series dose for this session only.
    change_reason: Mapped[str] = mapped_column(String(300), default="")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    #: The physician's order this dose was given under (None: the series dose).
    dose_order_id: Mapped[int | None] = mapped_column(ForeignKey("dose_order.id"))
    dose_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    infusion_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    policy_version: Mapped[int | None]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class ControlledSubstanceEntry(db.Model):
    """The controlled-substance record: drawn = given + wasted, witnessed by a second person."""

    __tablename__ = "controlled_substance_entry"
    __table_args__ = (
        CheckConstraint("drawn_mg = given_mg + wasted_mg", name="drawn_equals_given_plus_wasted"),
        CheckConstraint("given_mg >= 0 AND wasted_mg >= 0", name="amounts_not_negative"),
        CheckConstraint("witness_id <> recorded_by_id", name="witness_is_another_person"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), unique=True)
    product: Mapped[str] = mapped_column(String(120))
    lot: Mapped[str] = mapped_column(String(60))
    expiry_on: Mapped[date] = mapped_column(Date)
    drawn_mg: Mapped[Decimal] = mapped_column(Numeric(7, 1))
    given_mg: Mapped[Decimal] = mapped_column(Numeric(7, 1))
    wasted_mg: Mapped[Decimal] = mapped_column(Numeric(7, 1))
    #: Why less than the dose was given (e.g. the infusion was stopped early); empty when the whole dose was.
    shortfall_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    witness_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VitalSign(EnteredInError, db.Model):
    """One reading at the chair. A reading marked entered in error stays in the record, struck
    through, and no longer counts: not for the alerts it raised, the vitals due, the timeline or the discharge."""

    __tablename__ = "vital_sign"
    __table_args__ = (entered_in_error_check(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    systolic: Mapped[int | None]
    diastolic: Mapped[int | None]
    heart_rate: Mapped[int | None]
    spo2: Mapped[int | None]
    #: Modified Observer's Assessment of Alertness/Sedation, 0-5 (0: loss of consciousness).
    moaas: Mapped[int | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InChairAlert(db.Model):
    """An alert raised by a reading; a nurse or physician acknowledges it with an action. An alert whose
    reading was marked entered in error is withdrawn (the reading's mark says who, when and why)."""

    __tablename__ = "in_chair_alert"
    __table_args__ = (CheckConstraint(f"action IS NULL OR action IN {ACK_ACTIONS!r}", name="action_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    vital_sign_id: Mapped[int] = mapped_column(ForeignKey("vital_sign.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Indexed: every physician's page counts the open alerts (acknowledged_at IS NULL) among years of them.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    action: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(Text, default="")
    drug_given: Mapped[str] = mapped_column(String(200), default="")


class InfusionEvent(db.Model):
    """A pause, resume or stop of a running infusion, at its time (pauses and stops follow an alert)."""

    __tablename__ = "infusion_event"
    __table_args__ = (CheckConstraint(f"kind IN {EVENT_KINDS!r}", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The alert whose acknowledgement paused or stopped the infusion; None for a resume.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("in_chair_alert.id"))
    note: Mapped[str] = mapped_column(String(300), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class DischargeAssessment(db.Model):
    """A nurse's discharge answers that the gate refused, kept (not retyped) while the patient waits
    for a physician: the physician sees them with the open findings and overrides there."""

    __tablename__ = "discharge_assessment"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    moaas: Mapped[int | None]
    escort_present: Mapped[bool | None]
    instructions_given: Mapped[bool | None]
    condition: Mapped[str] = mapped_column(String(300), default="")
    #: The findings still open when the discharge was refused: [{"code", "severity", "message", "values"}].
    open_findings: Mapped[list] = mapped_column(JSON)
    policy_version: Mapped[int | None]
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class DischargeRecord(db.Model):
    __tablename__ = "discharge_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), unique=True)
    moaas: Mapped[int | None]
    escort_present: Mapped[bool | None]
    instructions_given: Mapped[bool | None]
    condition: Mapped[str] = mapped_column(String(300), default="")
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    policy_version: Mapped[int | None]
