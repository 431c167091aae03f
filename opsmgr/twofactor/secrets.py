"""TOTP secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the app's secret key.

A database copy alone then holds no usable authenticator secret. Changing OPSMGR_SECRET_KEY makes the
stored secrets unreadable: everyone with two-factor on needs an admin's reset and a new enrolment.
"""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_INFO = b"opsmgr two-factor secrets v1"


def _fernet():
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret):
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed):
    """The plain base32 secret, or None when it cannot be read (the secret key changed)."""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None
