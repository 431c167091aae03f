"""Plain factory functions for test data, built through the services."""
import itertools
from dataclasses import dataclass

from opsmgr.audit.service import Actor
from opsmgr.auth import service
from opsmgr.extensions import db

FACTORY_ACTOR = Actor(user_id=None, username="test-factory", role=None)
_numbers = itertools.count(1)


@dataclass(frozen=True)
class MadeUser:
    id: int
    username: str
    password: str
    role: str


def create_user(*, role, username, password, now, **fields):
    username = username or f"{role}{next(_numbers)}"
    user = service.create_staff(username=username, full_name=fields.pop("full_name", username.title()),
                                role=role, password=password, actor=FACTORY_ACTOR, now=now, **fields)
    db.session.commit()
    return MadeUser(user.id, user.username, password, user.role)
