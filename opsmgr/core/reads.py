"""Read requests read first and write last, so they never hold the write lock while a page is built.

A GET or HEAD request is in its *read phase* from the start: its queries run in a deferred
transaction (on SQLite under WAL any number of workers read at once; on PostgreSQL nothing takes
the audit head's row lock), and the few things a read must write — the staff session's last-seen
time, the audit row of each read, a timeout or a denial — are queued with ``write()``. When the
response is ready, ``finish()`` ends the read transaction and runs the queue in one short write
transaction (``BEGIN IMMEDIATE`` on SQLite), committed before the response leaves. If that commit
fails, the page is replaced by an error page: no patient data is sent without its audit row.

Every other request (and the CLI, the scheduler, tests without a request) writes at once, as
before. A flush that would write during the read phase is a programming error and raises: the
write belongs in ``write()``.
"""
from contextlib import contextmanager, suppress
from contextvars import ContextVar

from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from opsmgr.extensions import db

READ_METHODS = frozenset({"GET", "HEAD"})


class WriteInReadPhase(RuntimeError):
    """An ORM flush with changes while a read request is still reading."""


#: Set by `reading()`: a long read outside any request (flask audit verify) begins deferred too.
_READING = ContextVar("opsmgr_reading", default=False)


def in_read_phase():
    return _READING.get() or (has_request_context() and g.get("read_phase", False))


@contextmanager
def reading():
    """A read-only stretch outside a request: its transaction begins deferred, as a read request's does,
    so on SQLite it never holds the write lock, and reads one snapshot (on PostgreSQL a read-only
    REPEATABLE READ transaction). `flask audit verify` reads millions of rows for a minute or more; begun
    IMMEDIATE (as every other transaction outside a request is), it would stop every writer for that long,
    and read statement by statement under READ COMMITTED it would see rows appended meanwhile in its last
    look at the chain's head. Ends the transaction it read in; a write inside raises (WriteInReadPhase)."""
    token = _READING.set(True)
    try:
        db.session.rollback()  # a transaction already open began as it began: start afresh
        if db.session.get_bind().dialect.name == "postgresql":
            # One snapshot for every statement of the stretch: under READ COMMITTED, rows appended while
            # verify walks the chain would show in its last look at the head and read as a cut-off chain.
            # (Bound to a connection already inside a transaction — the test suite's rolled-back database,
            # where nothing else writes — it reads in that one.)
            with suppress(InvalidRequestError):
                db.session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                         "postgresql_readonly": True})
        yield
    finally:
        db.session.rollback()
        _READING.reset(token)


def write(call):
    """Run ``call()`` now, or — during a read request's read phase — in its write phase."""
    if in_read_phase():
        g.read_writes.append(call)
    else:
        call()


def start():
    """before_request (registered first): a GET or HEAD starts in its read phase."""
    g.read_phase = request.method in READ_METHODS
    g.read_writes = []


def finish(response):
    """after_request (registered first, so it runs last): write what the read queued, then send."""
    if not g.get("read_phase", False):
        return response
    g.read_phase = False
    writes, g.read_writes = g.read_writes, []
    db.session.rollback()  # ends the read snapshot; nothing was written in it
    if writes:
        for call in writes:
            call()
        db.session.commit()
    return response


def forget(_error=None):
    """teardown_request: a request that ended early leaves no phase behind (tests share ``g``)."""
    if has_request_context():
        g.pop("read_phase", None)
        g.pop("read_writes", None)


@event.listens_for(Session, "before_flush")
def _refuse_writes_while_reading(session, flush_context, instances):
    if not in_read_phase():
        return
    if session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty):
        raise WriteInReadPhase("a read request wrote before its response was ready; queue it with reads.write()")
