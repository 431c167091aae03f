"""A generated PDF kept once, with its SHA-256: every download sends these very bytes."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

REPORT_KINDS = ("session", "series")


class ReportDocument(db.Model):
    __tablename__ = "report_document"
    __table_args__ = (
        CheckConstraint(f"kind IN {REPORT_KINDS!r}", name="kind_known"),
        CheckConstraint("length(sha256) = 64", name="sha256_is_hex"),
        # A signed session has one summary: a second generation (two first requests at once) loses.
        UniqueConstraint("kind", "session_id", name="uq_report_document_kind_session"),
        # A series summary covers the sessions signed when it was signed: one per count, so a second tab
        # signing the same sessions again loses, and a later one (boosters added) is a new document.
        Index("ix_report_document_series_count", "kind", "series_id", "session_count", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The public identifier printed on the document and asked for on the verification page (random, not the row id).
    document_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_session.id"))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_series.id"), index=True)
    #: Hex SHA-256 of ``content``; a download whose bytes no longer match is refused.
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column("bytes", LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The physician who signed it (series) or whose request generated it (session).
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    #: Series summaries: how many of the series' sessions it covers, and the physician's paragraph.
    session_count: Mapped[int | None]
    summary_text: Mapped[str | None] = mapped_column(Text)
    #: Series summaries: "Name, credentials" of the signing physician as printed and signed.
    signer: Mapped[str | None] = mapped_column(String(200))
