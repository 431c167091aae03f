"""The session note (set, setting, experience), its adverse events, signature and addenda.

The note belongs to the session aggregate: when a physician signs it, the note and every row of
the session (checklist, overrides, dose, controlled substance, vitals, alerts, events, discharge)
are frozen. ``signed_at`` on the note is the lock that the service guard and the database
triggers read. Addenda are append-only from the moment they are written.
"""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

NOTE_STATUSES = ("draft", "complete", "signed")
AE_KINDS = ("nausea", "vomiting", "anxiety_agitation", "hypertension", "headache", "dizziness", "dysphoria",
            "emergence_reaction", "other")
AE_SEVERITIES = ("mild", "moderate", "severe")
AE_OUTCOMES = ("resolved", "resolving", "ongoing_at_discharge", "referred")
#: The longest text a long note field accepts (characters); short fields take 300.
LONG_TEXT = 10_000
SHORT_TEXT = 300


class SessionNote(db.Model):
    __tablename__ = "session_note"
    __table_args__ = (
        CheckConstraint(f"status IN {NOTE_STATUSES!r}", name="status_known"),
        CheckConstraint("dissociation_clinician BETWEEN 0 AND 10", name="dissociation_clinician_range"),
        CheckConstraint("dissociation_patient BETWEEN 0 AND 10", name="dissociation_patient_range"),
        CheckConstraint("(status = 'signed') = (signed_at IS NOT NULL)", name="signed_status_matches"),
        # The unsigned queue asks for the few complete notes among years of signed ones.
        Index("ix_session_note_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    # Set.
    mindset: Mapped[str] = mapped_column(Text, default="")
    intention: Mapped[str] = mapped_column(Text, default="")
    expectations: Mapped[str] = mapped_column(Text, default="")
    worries: Mapped[str] = mapped_column(Text, default="")
    # Setting.
    music: Mapped[str] = mapped_column(Text, default="")
    #: None until asked: an eye mask offered and worn, or not.
    eye_mask: Mapped[bool | None]
    lighting: Mapped[str] = mapped_column(String(SHORT_TEXT), default="")
    room: Mapped[str] = mapped_column(String(SHORT_TEXT), default="")
    support_person: Mapped[str] = mapped_column(Text, default="")
    setting_changes: Mapped[str] = mapped_column(Text, default="")
    #: The session whose set and setting were copied in as a starting point, if any.
    copied_from_session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"))
    # Experience.
    dissociation_clinician: Mapped[int | None]
    dissociation_patient: Mapped[int | None]
    emotional_tone: Mapped[str] = mapped_column(Text, default="")
    themes: Mapped[str] = mapped_column(Text, default="")
    perceptual_effects: Mapped[str] = mapped_column(Text, default="")
    quotes: Mapped[str] = mapped_column(Text, default="")
    ending: Mapped[str] = mapped_column(Text, default="")
    # After.
    post_session_state: Mapped[str] = mapped_column(Text, default="")
    integration_plan: Mapped[str] = mapped_column(Text, default="")
    narrative: Mapped[str] = mapped_column(Text, default="")
    # Workflow.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    # The signature: who, with what credentials, when, and the SHA-256 of what was locked.
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    signer_name: Mapped[str] = mapped_column(String(120), default="")
    signer_credentials: Mapped[str] = mapped_column(String(40), default="")
    #: Hex SHA-256 of ``signed_content``.
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    #: The canonical serialization of the whole session as signed (UTF-8 JSON, sorted keys).
    signed_content: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    session = relationship("InfusionSession", foreign_keys=[session_id])

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_signed(self):
        return self.signed_at is not None


class AdverseEvent(db.Model):
    __tablename__ = "adverse_event"
    __table_args__ = (
        CheckConstraint(f"kind IN {AE_KINDS!r}", name="kind_known"),
        CheckConstraint(f"severity IN {AE_SEVERITIES!r}", name="severity_known"),
        CheckConstraint(f"outcome IN {AE_OUTCOMES!r}", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    #: Free text naming the event when kind is "other".
    other_kind: Mapped[str] = mapped_column(String(120), default="")
    onset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    severity: Mapped[str] = mapped_column(String(10))
    intervention: Mapped[str] = mapped_column(Text, default="")
    drug_given: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(24))
    #: The in-chair alert this event was recorded from, if any.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("in_chair_alert.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))


class NoteAddendum(db.Model):
    """A signed addition to a signed note: the original stays as it was, above it."""

    __tablename__ = "note_addendum"
    __table_args__ = (
        CheckConstraint("length(reason) > 0 AND length(body) > 0", name="reason_and_text_given"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), index=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("session_note.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    author_name: Mapped[str] = mapped_column(String(120))
    author_credentials: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(String(SHORT_TEXT))
    body: Mapped[str] = mapped_column(Text)
    #: When what it describes happened, for a late entry; None when it describes nothing later.
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When it was written and signed (the author re-entered their password).
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Hex SHA-256 over the addendum's canonical serialization and the note's content hash.
    content_hash: Mapped[str] = mapped_column(String(64))
