"""Entered in error, table-first: who may mark an entry, and each refusal in its order. No app needed."""
import pytest

from opsmgr.rules.corrections import (
    ALREADY,
    NO_REASON,
    NOT_THEIRS,
    REASON_MAX,
    SIGNED,
    TOO_LONG,
    mark_problems,
    may_mark,
)
from opsmgr.rules.findings import Problem


@pytest.mark.parametrize(("role", "user_id", "author_id", "expected"), [
    ("nurse", 7, 7, True),         # the author
    ("nurse", 7, 8, False),        # another nurse
    ("nurse", 7, None, False),     # an entry without a known author
    ("nurse", None, None, False),  # no user: never "the author"
    ("physician", 9, 8, True),     # any physician
    ("physician", 9, None, True),
    ("coordinator", 7, 7, True),   # who may reach the page at all is the permission's business
])
def test_the_author_or_a_physician_may_mark(role, user_id, author_id, expected):
    assert may_mark(role=role, user_id=user_id, author_id=author_id) is expected


OK = {"reason": "Typed in the wrong chair's row", "role": "nurse", "user_id": 7, "author_id": 7,
      "already_marked": False, "signed": False}


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, ()),
    ({"reason": "x" * REASON_MAX}, ()),                               # on the limit
    ({"reason": "x" * (REASON_MAX + 1)}, (Problem("reason", TOO_LONG),)),  # just outside
    ({"reason": "  " + "x" * REASON_MAX + "  "}, ()),                 # surrounding space is not counted
    ({"reason": ""}, (Problem("reason", NO_REASON),)),
    ({"reason": "   "}, (Problem("reason", NO_REASON),)),
    ({"reason": None}, (Problem("reason", NO_REASON),)),
    ({"author_id": 8}, (Problem(None, NOT_THEIRS),)),
    ({"author_id": 8, "role": "physician"}, ()),
    ({"already_marked": True}, (Problem(None, ALREADY),)),
    # Signed first: after signing, the answer is always the addendum, whoever asks and whatever they typed.
    ({"signed": True, "already_marked": True, "author_id": 8, "reason": ""}, (Problem(None, SIGNED),)),
])
def test_mark_problems(changes, expected):
    assert mark_problems(**{**OK, **changes}) == expected


def test_the_signed_refusal_points_to_the_addendum():
    assert "addendum" in SIGNED
