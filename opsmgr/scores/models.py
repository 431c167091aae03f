"""A PHQ-9 or GAD-7 as it was taken: at a session's checklist, or by phone on a follow-up call.

A checklist's scores are part of that session's signed record (the canonical checklist carries
their items), so a row with a session is locked with the session (migration b5d4e0f1a2c5); a phone
score has no session. While a nurse is still filling in the checklist its items may be partly
answered (None where not yet asked) and the row has no total; every other score is complete.
"""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import EnteredInError, UTCDateTime, entered_in_error_check
from opsmgr.extensions import db

PHQ9 = "PHQ-9"
GAD7 = "GAD-7"
INSTRUMENTS = (PHQ9, GAD7)
CHECKLIST = "checklist"
PHONE = "phone"
SOURCES = (CHECKLIST, PHONE)


class Score(EnteredInError, db.Model):
    __tablename__ = "score"
    __table_args__ = (
        CheckConstraint(f"instrument IN {INSTRUMENTS!r}", name="instrument_known"),
        CheckConstraint(f"source IN {SOURCES!r}", name="source_known"),
        # A checklist's score belongs to its session; a phone score to no session.
        CheckConstraint("(session_id IS NOT NULL) = (source = 'checklist')", name="session_with_checklist"),
        CheckConstraint("difficulty IS NULL OR (instrument = 'PHQ-9' AND difficulty BETWEEN 0 AND 3)",
                        name="difficulty_phq9"),
        CheckConstraint("total IS NULL OR total BETWEEN 0 AND 27", name="total_in_range"),
        CheckConstraint("(total IS NULL) = (band IS NULL)", name="band_with_total"),
        entered_in_error_check(),
        UniqueConstraint("session_id", "instrument", name="uq_score_session_instrument"),
        Index("ix_score_patient_id_taken_at", "patient_id", "taken_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"))
    instrument: Mapped[str] = mapped_column(String(8))
    #: One answer (0–3) per item in order; None for an item a checklist has not asked yet.
    items: Mapped[list] = mapped_column(JSON)
    #: The PHQ-9's "how difficult…" item (0–3): recorded, never added to the total.
    difficulty: Mapped[int | None]
    #: None until every item is answered (a checklist in progress).
    total: Mapped[int | None]
    #: The severity band the rules give the total (opsmgr.rules.scales).
    band: Mapped[str | None] = mapped_column(String(20))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(12))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def is_complete(self):
        return self.total is not None

    @property
    def answers(self):
        """The items as a checklist shows them: None when none is answered yet."""
        return None if all(item is None for item in self.items) else list(self.items)
