"""Staff accounts and their server-side login sessions."""
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class Role(StrEnum):
    NURSE = "nurse"
    COORDINATOR = "coordinator"
    PHYSICIAN = "physician"
    ADMIN = "admin"

    @property
    def label(self):
        return self.value.capitalize()


ROLE_VALUES = tuple(role.value for role in Role)


class StaffUser(UserMixin, db.Model):
    __tablename__ = "staff_user"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES!r}", name="role_known"),
        CheckConstraint("failed_login_count >= 0", name="failed_count_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-case; login compares case-insensitively.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    #: Professional credentials printed beside a signature, e.g. "MD" or "RN".
    credentials: Mapped[str] = mapped_column(String(40), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active_account: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sessions: Mapped[list["StaffSession"]] = relationship(back_populates="user")

    #: The login session this request runs under; set by the session loader, never stored.
    session_token = None
    #: Its staff_session row's id (what submission keys are remembered under).
    staff_session_id = None

    @property
    def is_active(self):
        return self.is_active_account

    def get_id(self):
        # Flask-Login keeps this in the cookie: the server-side session's token, not the user id,
        # so ending the session row ends the login (Flask-Login "alternative tokens").
        return self.session_token

    @property
    def role_enum(self):
        return Role(self.role)

    @property
    def display_name(self):
        return f"{self.full_name}, {self.credentials}" if self.credentials else self.full_name


class StaffSession(db.Model):
    """One login: the cookie carries a random token whose SHA-256 is stored here."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: logout, idle, absolute, deactivated, password_changed, ended_by_admin
    end_reason: Mapped[str | None] = mapped_column(String(30))
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[StaffUser] = relationship(back_populates="sessions")
