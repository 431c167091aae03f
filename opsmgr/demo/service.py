"""Seed the demo staff (and, as later features land, a fictional clinic)."""
import secrets

from sqlalchemy import func, select

from opsmgr.audit.service import Actor
from opsmgr.auth import service as auth
from opsmgr.auth.models import Role, StaffUser
from opsmgr.extensions import db

DEMO_ACTOR = Actor(user_id=None, username="demo-seed", role=None, ip=None)

DEMO_STAFF = (
    ("nurse", "Demo Nurse (fictional)", Role.NURSE, "RN"),
    ("coordinator", "Demo Coordinator (fictional)", Role.COORDINATOR, ""),
    ("physician", "Demo Physician (fictional)", Role.PHYSICIAN, "MD"),
    ("admin", "Demo Admin (fictional)", Role.ADMIN, ""),
)


def has_staff():
    return db.session.scalar(select(func.count()).select_from(StaffUser)) > 0


def new_demo_password():
    return "demo-" + secrets.token_urlsafe(12)


def seed_demo_staff(*, now, password=None):
    """Create the four demo accounts; returns {username: password}. Flushes, never commits."""
    created = {}
    for username, full_name, role, credentials in DEMO_STAFF:
        chosen = password or new_demo_password()
        auth.create_staff(username=username, full_name=full_name, role=role, credentials=credentials,
                          password=chosen, actor=DEMO_ACTOR, now=now)
        created[username] = chosen
    return created
