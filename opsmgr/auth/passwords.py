"""argon2id hashing with the configured cost, and the shipped common-password list."""
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from opsmgr.rules.access import AccessPolicy, password_problems

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


def _hasher():
    config = current_app.config
    key = "opsmgr.password_hasher"
    if key not in current_app.extensions:
        current_app.extensions[key] = PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"],
            memory_cost=config["ARGON2_MEMORY_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
            type=Type.ID,
        )
    return current_app.extensions[key]


def hash_password(password):
    return _hasher().hash(password)


def verify_password(password_hash, password):
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    return _hasher().check_needs_rehash(password_hash)


def spend_verify_time():
    """Verify against a throwaway hash so an unknown username costs as long as a wrong password."""
    key = "opsmgr.dummy_hash"
    if key not in current_app.extensions:
        current_app.extensions[key] = hash_password("not-a-real-password-for-timing")
    verify_password(current_app.extensions[key], "still-not-the-password")


@cache
def common_passwords():
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def access_policy():
    config = current_app.config
    return AccessPolicy(
        password_min_length=config["PASSWORD_MIN_LENGTH"],
        lockout_threshold=config["LOCKOUT_THRESHOLD"],
        lockout_duration=config["LOCKOUT_DURATION"],
        idle_timeout=config["IDLE_TIMEOUT"],
        absolute_timeout=config["ABSOLUTE_TIMEOUT"],
        tablet_lock_timeout=config["TABLET_LOCK_TIMEOUT"],
        address_failure_limit=config["SIGN_IN_ADDRESS_LIMIT"],
        address_window=config["SIGN_IN_ADDRESS_WINDOW"],
    )


def new_password_problems(password, username):
    return password_problems(
        password, username=username, common_passwords=common_passwords(), policy=access_policy()
    )
