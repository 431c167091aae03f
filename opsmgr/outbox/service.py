"""The outbox: side effects leave from rows the commit made, never from inside a transaction.

A service calls ``enqueue()`` in its own transaction; the row commits or rolls back with the
clinical change that caused it. ``dispatch_due()`` (the scheduler's job, every few seconds)
claims one due message at a time under a lease and commits the claim, runs its handler with no
transaction open, and records the result in a second short transaction.

Delivery is at least once, made as close to once as the database allows: a claim is a
conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
serialises claimers), so two dispatchers never run one message within its lease, and a result
is written only by the claim that ran it, so a message is marked sent once. The duplicates left
are a process that dies after the provider accepted a message and before "sent" commits, and a
handler that outlives its lease: the lease expires and the message is sent again (its row keeps
``last_error`` = LeaseExpired). For clinical reminders a late duplicate beats a lost message;
handlers pass ``message.dedupe_key`` (or the id) to a provider that takes an idempotency key. A message that still fails
after ``MAX_ATTEMPTS`` handler runs becomes ``failed`` and stays for a person to look at.

After the commit, ``opsmgr.outbox.hook`` hands the committed ids to an optional callable (see there).

Enqueueing is not audited (the service that enqueues audits its own action); results are logged
with the message id and kind, never the payload.
"""
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.outbox.hook import note_enqueued
from opsmgr.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: The wait after the first failure, doubled after each further one up to the cap (1, 2, 4 … 60 min).
RETRY_DELAY = timedelta(minutes=1)
RETRY_DELAY_CAP = timedelta(hours=1)
LEASE = timedelta(minutes=5)
ERROR_LENGTH = 200
LEASE_EXPIRED = "LeaseExpired: the dispatcher gave no result within its lease"


@dataclass(frozen=True)
class ClaimedMessage:
    """What a handler gets: a plain copy, so reading it never touches the database."""

    id: int
    kind: str
    payload: dict
    dedupe_key: str | None
    attempt: int


def enqueue(kind, payload, *, now, dedupe_key=None, available_at=None):
    """Add a message in the caller's transaction; an existing dedupe_key returns that row instead."""
    if not isinstance(payload, dict):
        raise TypeError("an outbox payload is a JSON object")
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(OutboxMessage).values(
        kind=kind, payload=payload, dedupe_key=dedupe_key, created_at=now,
        available_at=available_at or now, status="pending", attempts=0,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
    message_id = db.session.scalar(statement.returning(OutboxMessage.id))
    if message_id is None:
        return db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
    note_enqueued(db.session(), message_id)
    return db.session.get(OutboxMessage, message_id)


def register(kind, handler, *, app=None):
    """Send messages of ``kind`` with ``handler(message)``, which raises to report a failure.

    A handler may read through ``db.session`` but must end that transaction before it talks to
    the network (on SQLite an open transaction holds the write lock); it never writes.
    """
    _handlers(app or current_app)[kind] = handler


def _handlers(app):
    return app.extensions.setdefault("outbox_handlers", {})


def default_worker_id():
    """Who holds a claim: host, process and thread, so two dispatchers never share an id."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


def dispatch_due(now, *, worker_id, limit=50, lease=LEASE, ids=None):
    """Send up to ``limit`` messages due at ``now`` (only ``ids`` if given); returns how many ran.

    It commits, so it refuses to start inside a transaction. Each claim's lease and each result
    are stamped with the clock, as a run may outlast one lease.
    """
    if db.session().in_transaction():
        raise RuntimeError("dispatch_due commits: call it with no transaction open")
    _fail_abandoned(now)
    ran = 0
    while ran < limit:
        message = _claim_next(now, worker_id, lease, ids)
        if message is None:
            break
        _run(message, worker_id)
        ran += 1
    return ran


def dispatch_immediately(ids):
    """An OUTBOX_AFTER_COMMIT for the CLI and tests: send the committed ids now, in a fresh app context."""
    app = current_app._get_current_object()
    with app.app_context():
        dispatch_due(utcnow(), worker_id=default_worker_id(), ids=ids)


def _lease_expired(now):
    return and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until <= now)


def _fail_abandoned(now):
    """A claim that expired on its last allowed attempt is not run again: it failed."""
    db.session.execute(
        update(OutboxMessage)
        .where(_lease_expired(now), OutboxMessage.attempts >= MAX_ATTEMPTS)
        .values(status="failed", claimed_by=None, claimed_until=None, last_error=LEASE_EXPIRED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _claim_next(now, worker_id, lease, ids):
    claimable = and_(
        or_(and_(OutboxMessage.status == "pending", OutboxMessage.available_at <= now), _lease_expired(now)),
        OutboxMessage.attempts < MAX_ATTEMPTS,
    )
    query = (select(OutboxMessage.id).where(claimable)
             .order_by(OutboxMessage.available_at, OutboxMessage.id).limit(1)
             .with_for_update(skip_locked=True))
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    message_id = db.session.scalar(query)
    row = None
    if message_id is not None:
        row = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, claimable)
            .values(status="sending", claimed_by=worker_id, claimed_until=utcnow() + lease,
                    attempts=OutboxMessage.attempts + 1,
                    last_error=case((OutboxMessage.status == "sending", LEASE_EXPIRED),
                                    else_=OutboxMessage.last_error))
            .returning(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload,
                       OutboxMessage.dedupe_key, OutboxMessage.attempts)
            .execution_options(synchronize_session=False)
        ).one_or_none()
    db.session.commit()
    return None if row is None else ClaimedMessage(*row)


def _run(message, worker_id):
    try:
        handler = _handlers(current_app).get(message.kind)
        if handler is None:
            raise LookupError(f"no handler registered for kind {message.kind!r}")
        handler(message)
    except Exception as error:  # noqa: BLE001 - a handler's failure is recorded and retried, never raised
        db.session.rollback()
        _record_failure(message, worker_id, error)
    else:
        db.session.rollback()
        # last_error stays: a LeaseExpired there marks a message that may have gone out twice.
        _record(message, worker_id, status="sent", sent_at=utcnow())
        log.info("outbox message %s (%s) sent", message.id, message.kind)


def _record_failure(message, worker_id, error):
    final = message.attempt >= MAX_ATTEMPTS
    delay = min(RETRY_DELAY * 2 ** (message.attempt - 1), RETRY_DELAY_CAP)
    _record(message, worker_id, status="failed" if final else "pending", available_at=utcnow() + delay,
            last_error=describe(error))
    log.info("outbox message %s (%s) attempt %d failed with %s%s", message.id, message.kind, message.attempt,
             type(error).__name__, "; giving up" if final else "")


def _record(message, worker_id, **values):
    """Write a result only while this claim still holds the message (the attempt number is the claim)."""
    done = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.status == "sending",
               OutboxMessage.claimed_by == worker_id, OutboxMessage.attempts == message.attempt)
        .values(claimed_by=None, claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not done:
        log.warning("outbox message %s (%s): its lease was taken over before the result was recorded",
                    message.id, message.kind)


def describe(error):
    """The exception's class and its message on one line, short: no traceback."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:ERROR_LENGTH] if text else type(error).__name__
