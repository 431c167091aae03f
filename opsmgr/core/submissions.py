"""One action per click: every form that changes something carries a one-time submission key.

The key is remembered for the staff session with the answer its first submission got (the redirect
and the flashed messages). A repeat of the key (a double click, a form sent again) gets that answer
again and changes nothing. The key row is written before the action, in the action's transaction, so
a concurrent repeat waits on the unique index (PostgreSQL) or the write lock (SQLite) and then
replays; a refused submission keeps no key, so its repeat is judged again.
"""
import re
import secrets
from datetime import datetime

from flask import current_app, flash, g, redirect, request, session
from flask_login import current_user
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.clock import utcnow
from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

#: The hidden input every state-changing form renders: <input type="hidden" name="submission_key" ...>.
FIELD = "submission_key"
#: What new_key() makes (22 characters); anything else counts as no key at all.
WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{16,64}")


class Submission(db.Model):
    """A submission key seen in one staff session, with the answer its first submission got."""

    __tablename__ = "submission"
    __table_args__ = (UniqueConstraint("staff_session_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_session_id: Mapped[int] = mapped_column(ForeignKey("staff_session.id"))
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The first submission's redirect; NULL while that submission is being answered (or after a page
    #: refusing it committed its own audit reads): such a key is judged again.
    status: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(String(2000))
    #: The messages it flashed, [[category, message], ...], flashed again with the replayed redirect.
    flashes: Mapped[list | None] = mapped_column(JSON)


def new_key():
    """A fresh key for one rendered form: the Jinja global submission_key()."""
    return secrets.token_urlsafe(16)


def exempt(view):
    """Mark a view whose posts are not one per key: a versioned autosave posts the same form again and again."""
    view.submission_exempt = True
    return view


def claim_or_replay():
    """Before-request hook: a key this staff session already answered gets that answer again, before
    the view looks at anything; a new key is claimed (written and flushed) in this request's transaction."""
    g.pop("submission", None)
    owner, key = _request_key()
    return None if key is None else _claim(owner, key)


def reclaim():
    """After a rollback (a concurrent write stopped the action): claim this request's key again, so that a
    retry is still one action per key; the first answer instead if a repeat of the key got in meanwhile."""
    g.pop("submission", None)
    claimed = g.pop("submission_claim", None)
    return None if claimed is None else _claim(*claimed)


def remember(response, flashed):
    """Store the answer to this request's key: the redirect and the messages it flashed."""
    row = g.pop("submission", None)
    if row is None:
        return
    if getattr(response, "status_code", 0) not in {301, 302, 303, 307, 308}:
        db.session.delete(row)  # only a redirect can be answered again
        return
    row.status, row.location = response.status_code, response.headers["Location"]
    row.flashes = [[category, message] for category, message in flashed]


def release():
    """Forget this request's key: a refused submission changed nothing, so its repeat is judged again."""
    row = g.pop("submission", None)
    if row is not None and inspect(row).persistent:
        db.session.delete(row)


def _request_key():
    """(staff session id, key) of a keyed post by a signed-in user, else (None, None)."""
    if request.method != "POST" or not current_user.is_authenticated:
        return None, None
    view = current_app.view_functions.get(request.endpoint)
    owner = getattr(current_user, "staff_session_id", None)
    key = request.form.get(FIELD, "")
    if view is None or getattr(view, "submission_exempt", False) or owner is None or not WELL_FORMED.fullmatch(key):
        return None, None
    return owner, key


def _claim(owner, key):
    """The first answer to replay, or None with the key claimed as g.submission."""
    row = _find(owner, key)
    if row is None:
        row = Submission(staff_session_id=owner, key=key, created_at=utcnow())
        db.session.add(row)
        try:
            db.session.flush()
        except IntegrityError:  # a concurrent submission of the same key got there first and committed
            db.session.rollback()
            row = _find(owner, key)
            if row is None:
                return None
    if row.location is not None:
        db.session.rollback()
        return _replay(row)
    g.submission, g.submission_claim = row, (owner, key)
    return None


def _find(owner, key):
    # Locked: a row some earlier refusal's page committed unanswered makes a concurrent repeat wait too.
    return db.session.scalar(select(Submission).where(Submission.staff_session_id == owner, Submission.key == key)
                             .with_for_update())


def _replay(row):
    pending = [list(message) for message in session.get("_flashes", ())]
    for category, message in row.flashes or ():
        if [category, message] not in pending:  # the first answer's cookie may have reached the browser
            flash(message, category)
    return redirect(row.location, code=row.status)
