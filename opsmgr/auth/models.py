"""Staff accounts and their server-side login sessions."""
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String
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
    #: argon2 hash of the short PIN that resumes a locked chair-tablet screen; NULL: no PIN, a lock signs out.
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    pin_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sessions: Mapped[list["StaffSession"]] = relationship(back_populates="user")

    #: The login session this request runs under; set by the session loader, never stored.
    session_token = None
    #: Its staff_session row's id (what submission keys are remembered under).
    staff_session_id = None
    #: Set by the session loader when this login runs on an enrolled chair tablet: seconds of idle before
    #: the screen locks (None on a desktop), and whether it is locked now.
    tablet_lock_seconds = None
    is_screen_locked = False

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
    #: logout, idle, absolute, deactivated, password_changed, ended_by_admin; on a chair tablet also
    #: pin_lockout, tablet_revoked, other_device (its cookie missing)
    end_reason: Mapped[str | None] = mapped_column(String(30))
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[StaffUser] = relationship(back_populates="sessions")


class ChairTablet(db.Model):
    """A device an admin enrolled as a chair tablet: its long-lived cookie's token, hashed."""

    __tablename__ = "chair_tablet"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    #: SHA-256 of the device cookie's random token; the token itself is only ever in the tablet's cookie.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enrolled_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    enrolled_by: Mapped[StaffUser] = relationship(foreign_keys=[enrolled_by_id])


class TabletSession(db.Model):
    """A staff session opened on a chair tablet: idle locks it instead of ending it."""

    __tablename__ = "tablet_session"
    __table_args__ = (CheckConstraint("failed_pin_count >= 0", name="failed_pin_count_positive"),)

    staff_session_id: Mapped[int] = mapped_column(ForeignKey("staff_session.id"), primary_key=True)
    tablet_id: Mapped[int] = mapped_column(ForeignKey("chair_tablet.id"), index=True)
    #: When the screen locked; NULL while it is open. Every request of a locked session shows the lock page.
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Wrong PINs since the screen locked; at the limit the session ends.
    failed_pin_count: Mapped[int] = mapped_column(default=0)


class SignInFailure(db.Model):
    """One failed sign-in from a client address: the per-address limit counts these over a sliding window
    (OPSMGR_SIGN_IN_ADDRESS_LIMIT), in the database so it holds across workers and restarts."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_address_failed_at", "address", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The client address (an IPv6 address by its /64 network: rules.access.throttle_address).
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
