"""The checklist answers of one infusion session (the overrides: opsmgr.gates).

These rows, with the dose, controlled-substance, vitals, alert and discharge rows of the same
session, form one aggregate that the notes feature will freeze and hash when a physician signs.
Every answer column is nullable: nothing is pre-filled, and an unanswered item is a finding.
"""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class ChecklistResponse(db.Model):
    __tablename__ = "checklist_response"
    __table_args__ = (
        CheckConstraint("suicide_risk IS NULL OR suicide_risk IN ('negative', 'low', 'moderate', 'high')",
                        name="suicide_risk_known"),
        CheckConstraint("willingness IS NULL OR willingness IN ('yes', 'unsure', 'no')", name="willingness_known"),
        CheckConstraint("pregnancy_status IS NULL OR pregnancy_status IN "
                        "('test_negative', 'reported_not_pregnant', 'positive', 'unknown')",
                        name="pregnancy_status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), unique=True)
    # Vitals before the dose.
    systolic: Mapped[int | None]
    diastolic: Mapped[int | None]
    heart_rate: Mapped[int | None]
    spo2: Mapped[int | None]
    temperature_c: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    respiratory_rate: Mapped[int | None]
    vitals_taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    # Contraindication recheck.
    #: [{"name": …, "med_class": …, "change": "started" | "stopped"}], or None when not yet asked.
    medication_changes: Mapped[list | None] = mapped_column(JSON)
    new_diagnoses: Mapped[bool | None]
    pregnancy_status: Mapped[str | None] = mapped_column(String(24))
    cardio_cerebrovascular_event: Mapped[bool | None]
    psychosis_symptoms: Mapped[bool | None]
    mania_symptoms: Mapped[bool | None]
    substance_use_in_window: Mapped[bool | None]
    vascular_contraindication: Mapped[bool | None]
    # Fasting, escort, consent.
    last_solid_food_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_clear_liquid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escort_name: Mapped[str] = mapped_column(String(120), default="")
    escort_phone: Mapped[str] = mapped_column(String(40), default="")
    #: "No escort today": how the patient gets home instead (medical transport, …); NULL with an escort.
    escort_arrangement: Mapped[str | None] = mapped_column(Text)
    consent_reconfirmed: Mapped[bool | None]
    # Measures and the patient's own voice.
    phq9_items: Mapped[list | None] = mapped_column(JSON)
    phq9_difficulty: Mapped[int | None]
    gad7_items: Mapped[list | None] = mapped_column(JSON)
    suicide_risk: Mapped[str | None] = mapped_column(String(10))
    willingness: Mapped[str | None] = mapped_column(String(10))
    #: The patient's intention in their own words.
    intention: Mapped[str] = mapped_column(Text, default="")
    # The last evaluation.
    policy_version: Mapped[int | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    #: The findings as evaluated: [{"code", "severity", "message", "values"}].
    findings: Mapped[list] = mapped_column(JSON, default=list)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
