"""The checklist answers of one infusion session (the overrides: opsmgr.gates).

These rows, with the dose, controlled-substance, vitals, alert and discharge rows of the same
session, form one aggregate that the notes feature will freeze and hash when a physician signs.
Every answer column is nullable: nothing is pre-filled, and an unanswered item is a finding. The
PHQ-9 and GAD-7 answers live in the score table (opsmgr.scores), one row per scale for the session;
the row is loaded with the checklist (joined) and read here as `phq9_items`, `phq9_difficulty` and
`gad7_items`, the names the rules, the form and the canonical record use.
"""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db
from opsmgr.scores.models import Score


def _checklist_score(instrument):
    return relationship(
        Score, viewonly=True, uselist=False, lazy="joined",
        primaryjoin=lambda: (ChecklistResponse.session_id == Score.session_id) & (Score.instrument == instrument),
        foreign_keys=lambda: [Score.session_id])


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
    # Measures (PHQ-9 and GAD-7: the score rows below) and the patient's own voice.
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

    #: The session's checklist scores (opsmgr.checklist.service keeps them; None before any answer).
    phq9_score: Mapped[Score | None] = _checklist_score("PHQ-9")
    gad7_score: Mapped[Score | None] = _checklist_score("GAD-7")

    @property
    def phq9_items(self):
        return None if self.phq9_score is None else self.phq9_score.answers

    @property
    def phq9_difficulty(self):
        return None if self.phq9_score is None else self.phq9_score.difficulty

    @property
    def gad7_items(self):
        return None if self.gad7_score is None else self.gad7_score.answers
