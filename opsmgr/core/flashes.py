"""Flashed messages kept on the server: the session cookie is signed, not encrypted, and a message may
name a patient. The cookie carries only a random key; the messages wait in `pending_flash` until shown.

This is a session interface, so Flask's own flash() and get_flashed_messages() (and every code path
that reads session["_flashes"]) keep working unchanged: the messages are read from the server on first
use in a request and written back, or deleted once shown, when the response's cookie is saved.
"""
import hashlib
import secrets
from datetime import datetime, timedelta

from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import JSON, String, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from opsmgr.core.clock import utcnow
from opsmgr.core.db import UTCDateTime
from opsmgr.extensions import db

FLASHES, KEY, PUBLIC = "_flashes", "_flash_key", "_flash_public"
#: The fixed sentences a signed-out browser is shown (core.web.unauthorized, auth.views): when every waiting
#: message is one of these, the cookie carries their numbers here and the server stores nothing, so a
#: stranger's requests write no rows. Any other message, or a changed wording, simply waits on the server.
PUBLIC_MESSAGES = (
    ("info", "Please sign in to continue."),
    ("info", "You were signed out because your session timed out. Please sign in again."),
    ("warning", "Your account is no longer active."),
    ("info", "You have signed out."),
    ("info", "The screen locked and no PIN is set for you, so you were signed out. "
             "Set a PIN under your account to resume with it next time."),
    ("warning", "No PIN is set for this account: sign in with your password."),
    ("warning", "Too many wrong PINs: sign in again with your username and password."),
)
_PUBLIC_NUMBERS = {message: number for number, message in enumerate(PUBLIC_MESSAGES)}
#: Messages nobody came back for are deleted by the session sweep after this long.
KEPT_FOR = timedelta(days=1)


class PendingFlash(db.Model):
    """The messages flashed to one browser and not shown yet."""

    __tablename__ = "pending_flash"

    #: SHA-256 of the random key in the browser's session cookie.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: [[category, message], ...] in the order flashed.
    messages: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def _hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def _read(key):
    if not key or not isinstance(key, str):
        return []
    messages = db.session.scalar(select(PendingFlash.messages).where(PendingFlash.key_hash == _hash(key)))
    return [tuple(message) for message in messages or ()]


class FlashSession(SecureCookieSession):
    """The cookie session whose "_flashes" live on the server, read the first time anything asks."""

    def __init__(self, initial=None):
        super().__init__(initial)
        #: The key the cookie came with; `loaded`: what the server held under it, once read.
        self.flash_key, self.loaded = dict.get(self, KEY), None

    def _load(self, key):
        if key == FLASHES and self.loaded is None:
            numbers = dict.get(self, PUBLIC) or ()
            self.loaded = [PUBLIC_MESSAGES[n] for n in numbers if isinstance(n, int) and 0 <= n < len(PUBLIC_MESSAGES)]
            self.loaded += _read(dict.get(self, KEY))
            if self.loaded and not dict.__contains__(self, FLASHES):
                dict.__setitem__(self, FLASHES, list(self.loaded))

    def __contains__(self, key):
        self._load(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        self._load(key)
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        self._load(key)
        super().__setitem__(key, value)

    def get(self, key, default=None):
        self._load(key)
        return super().get(key, default)

    def pop(self, key, *default):
        self._load(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self._load(key)
        return super().setdefault(key, default)


class ServerFlashSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except that flashed messages never enter the cookie."""

    session_class = FlashSession

    def save_session(self, app, session, response):
        if isinstance(session, FlashSession):
            _persist(session)
        super().save_session(app, session, response)


def _persist(session):
    pending = [tuple(message) for message in dict.pop(session, FLASHES, [])]
    original, current = session.flash_key, dict.get(session, KEY)
    if original == current and pending == (session.loaded or []):
        return  # not read, or read and left for a later page: they wait where they are
    numbers = [_PUBLIC_NUMBERS.get(message) for message in pending]
    if None in numbers:
        _store(session, original, pending)
    else:
        if original:
            _store(session, original, [])
        session.pop(KEY, None)
        if numbers:
            session[PUBLIC] = numbers
        else:
            session.pop(PUBLIC, None)
    session.flash_key, session.loaded = dict.get(session, KEY), pending


def _store(session, original, pending):
    """Replace the messages waiting on the server under the cookie's key (a fresh key for new ones)."""
    # What the request left uncommitted, its teardown would discard anyway; this is its own transaction.
    db.session.rollback()
    if original:
        db.session.execute(delete(PendingFlash).where(PendingFlash.key_hash == _hash(original)))
    if pending:
        key = secrets.token_urlsafe(24)
        db.session.execute(insert(PendingFlash).values(key_hash=_hash(key), created_at=utcnow(),
                                                       messages=[list(message) for message in pending]))
        session[KEY] = key
        session.pop(PUBLIC, None)
    else:
        session.pop(KEY, None)
    db.session.commit()


def forget_stale(*, now):
    """Delete messages flashed to browsers that never came back (the session sweep); returns how many."""
    return db.session.execute(delete(PendingFlash).where(PendingFlash.created_at < now - KEPT_FOR)).rowcount


def init_app(app):
    app.session_interface = ServerFlashSessionInterface()
