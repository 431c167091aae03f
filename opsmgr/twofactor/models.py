"""A staff member's second factor, their recovery codes, and which roles must have one."""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db


class TwoFactor(db.Model):
    """One staff member's authenticator secret; two-factor is on only once confirmed_at is set."""

    __tablename__ = "staff_two_factor"

    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    #: The base32 TOTP secret, Fernet-encrypted under a key derived from the app's secret key
    #: (twofactor.secrets); NULL after an admin's reset.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When one code from the app confirmed the enrolment; NULL: not confirmed, two-factor is off.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last 30-second time step whose code was accepted: that code and any earlier one are refused.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    #: Set by an admin's reset until the person is told at their next sign-in.
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(db.Model):
    """A single-use recovery code, stored as the SHA-256 of its 50 random bits (never the code)."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TwoFactorPolicy(db.Model):
    """Whether a role must sign in with two factors; a role without a row takes the default
    (twofactor.service.REQUIRED_BY_DEFAULT)."""

    __tablename__ = "two_factor_policy"

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    is_required: Mapped[bool]
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
