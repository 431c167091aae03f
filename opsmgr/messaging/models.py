"""Reminder templates an admin edits (rendered in a sandbox, see opsmgr.messaging.templates)."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class MessageTemplate(db.Model):
    """The clinic's wording of one message part; a part with no row uses the built-in default
    (rules.reminders: minimum necessary, no diagnosis, drug name or MRN)."""

    __tablename__ = "message_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "reminder_sms", "reminder_email_subject", "reminder_email_body".
    name: Mapped[str] = mapped_column(String(40), unique=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class SessionConfirmation(db.Model):
    """The patient confirmed a session (a YES reply, or staff recorded a call). It holds for the start
    it confirmed: a session moved since is unconfirmed again."""

    __tablename__ = "session_confirmation"

    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), primary_key=True)
    #: The start the patient confirmed.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: "sms" (a reply), "phone" or "in_person" (recorded by staff).
    via: Mapped[str] = mapped_column(String(10))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
