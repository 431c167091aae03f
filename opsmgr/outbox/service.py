"""The outbox is the message queue: rows written in the transaction, sent after it commits.

A service calls ``enqueue_message()`` (or ``enqueue()`` for a bare side effect) in its own
transaction; the row commits or rolls back with the clinical change that made it due.
``dispatch_due()`` (the scheduler's job, every few seconds, and ``flask reminders send-due``)
claims due messages under a lease and commits the claim, runs their handler with no transaction
open, and records each result in a short transaction of its own as soon as it is known.

Delivery is at least once, made as close to once as the database allows:
- a claim is a conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
  ``BEGIN IMMEDIATE`` serialises claimers), so two dispatchers never run one message within its
  lease, and a result is written only by the claim that ran it;
- exactly once across a crash between "the provider accepted it" and "sent" is committed is
  impossible with SMTP or SMS. A row left in ``sending`` by a crash is claimed again once its lease
  expires, with the same idempotency key (the email's Message-ID, the SMS provider key) and
  ``possibly_duplicate`` set for the worklist. Results are recorded one message at a time, so a
  crash duplicates at most the one message in flight (a batch claimed together is flagged as a
  whole, as the database cannot tell which of them had left; see opsmgr.outbox.channels);
- a message is never sent at or after its ``expires_at`` (a reminder whose session has started):
  it becomes ``expired``; ``cancel_pending()`` takes back what has not been claimed yet;
- a failure is retried with exponential backoff; after ``MAX_ATTEMPTS`` runs, or at once when the
  provider refuses it for good (``error.permanent``), it becomes ``failed`` for a person to look at.

After the commit, ``opsmgr.outbox.hook`` hands the committed ids to an optional callable (see there).

Enqueueing is not audited (the service that enqueues audits its own action); each message sent
about a patient is audited as ``message.sent`` in the transaction that records it. Results are
logged with the message id and kind, never the recipient or the text.
"""
import logging
import os
import socket
import sqlite3
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import and_, bindparam, case, event, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import Pool

from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.outbox.hook import note_enqueued
from opsmgr.outbox.models import CHANNELS, OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: The wait after the first failure, doubled after each further one up to the cap (1, 2, 4 … 60 min).
RETRY_DELAY = timedelta(minutes=1)
RETRY_DELAY_CAP = timedelta(hours=1)
LEASE = timedelta(minutes=5)
#: How many messages of a kind with a batch handler one claim takes (one SMTP connection).
BATCH_SIZE = 50
ERROR_LENGTH = 200
REASON_LENGTH = 200
LEASE_EXPIRED = "LeaseExpired: the dispatcher gave no result within its lease"
EXPIRED = "expired: not sent by its deadline"
EXPIRED_IN_FLIGHT = "expired: not sent by its deadline; an interrupted attempt may have sent it"
NO_RESULT = "NoResult: the batch handler reported nothing for this message"


@dataclass(frozen=True)
class ClaimedMessage:
    """What a handler gets: a plain copy, so reading it never touches the database."""

    id: int
    kind: str
    payload: dict
    dedupe_key: str | None
    attempt: int
    channel: str | None = None
    recipient: str | None = None
    subject: str | None = None
    body: str | None = None
    expires_at: datetime | None = None
    possibly_duplicate: bool = False
    patient_id: int | None = None


_CLAIMED_COLUMNS = (OutboxMessage.id, OutboxMessage.kind, OutboxMessage.payload, OutboxMessage.dedupe_key,
                    OutboxMessage.attempts, OutboxMessage.channel, OutboxMessage.recipient,
                    OutboxMessage.subject, OutboxMessage.body, OutboxMessage.expires_at,
                    OutboxMessage.possibly_duplicate, OutboxMessage.patient_id)


# --------------------------------------------------------------------------------------------
# Writing messages: in the caller's transaction
# --------------------------------------------------------------------------------------------

def _insert():
    return pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert


def enqueue(kind, payload, *, now, dedupe_key=None, available_at=None):
    """Add a bare side effect in the caller's transaction; an existing dedupe_key returns that row instead."""
    if not isinstance(payload, dict):
        raise TypeError("an outbox payload is a JSON object")
    statement = _insert()(OutboxMessage).values(
        kind=kind, payload=payload, dedupe_key=dedupe_key, created_at=now,
        available_at=available_at or now, status="pending", attempts=0,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
    message_id = db.session.scalar(statement.returning(OutboxMessage.id))
    if message_id is None:
        return db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
    note_enqueued(db.session(), message_id)
    return db.session.get(OutboxMessage, message_id)


def enqueue_message(channel, recipient, body, *, subject=None, key, due_at, expires_at=None,
                    patient_id=None, session_id=None, now):
    """Queue one message to a person, sent at ``due_at`` (never at or after ``expires_at``).

    ``key`` is its idempotency key: enqueueing the same key again returns the existing row
    unchanged, except a ``cancelled`` one (never sent), which takes the new content and is pending
    again, so re-planning is "cancel_pending, then enqueue what is due now". Flushes, never commits.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    if not key:
        raise ValueError("a message needs its idempotency key")
    if not recipient or not body:
        raise ValueError("a message needs a recipient and a body")
    if expires_at is not None and expires_at <= due_at:
        raise ValueError("a message must be due before it expires")
    content = {"channel": channel, "recipient": recipient, "subject": subject, "body": body,
               "patient_id": patient_id, "session_id": session_id, "available_at": due_at,
               "expires_at": expires_at}
    insert = _insert()(OutboxMessage).values(
        kind=channel, payload={}, dedupe_key=key, created_at=now, status="pending", attempts=0,
        possibly_duplicate=False, **content,
    )
    revived = {**content, "status": "pending", "attempts": 0, "last_error": None, "closed_at": None,
               "closed_reason": None, "possibly_duplicate": False, "kind": channel, "created_at": now}
    statement = insert.on_conflict_do_update(
        index_elements=["dedupe_key"], set_=revived, where=OutboxMessage.status == "cancelled",
    ).returning(OutboxMessage.id)
    message_id = db.session.scalar(statement)
    if message_id is None:
        return db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
    note_enqueued(db.session(), message_id)
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.id == message_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _like_prefix(prefix):
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return OutboxMessage.dedupe_key.like(escaped + "%", escape="\\")


def cancel_pending(*, session_id=None, key_prefix=None, reason, now):
    """Cancel the messages not yet claimed for a session and/or whose key starts with ``key_prefix``.

    Returns how many were cancelled. A message already ``sending`` is left to finish (it has gone or
    is going to the provider); sent and closed ones are history. Flushes in the caller's transaction.
    """
    if session_id is None and not key_prefix:
        raise ValueError("cancel_pending needs a session_id or a key_prefix")
    conditions = [OutboxMessage.status == "pending"]
    if session_id is not None:
        conditions.append(OutboxMessage.session_id == session_id)
    if key_prefix:
        conditions.append(_like_prefix(key_prefix))
    return db.session.execute(
        update(OutboxMessage).where(*conditions)
        .values(status="cancelled", closed_at=now, closed_reason=_short(reason, REASON_LENGTH))
        .execution_options(synchronize_session="fetch")
    ).rowcount


def cancel_pending_for_patient(patient_id, channel, *, reason, now):
    """Cancel a patient's messages on ``channel`` not yet claimed (an SMS opt-out takes effect at once).

    Returns how many were cancelled; one already ``sending`` is left to finish. Flushes in the caller's
    transaction."""
    return db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.patient_id == patient_id,
               OutboxMessage.channel == channel)
        .values(status="cancelled", closed_at=now, closed_reason=_short(reason, REASON_LENGTH))
        .execution_options(synchronize_session="fetch")
    ).rowcount


def mark_delivered(provider_id, *, now=None):
    """A provider's status callback said it arrived: sent → delivered. Returns whether a row changed."""
    return _provider_status(provider_id, ("sent",), status="delivered")


def mark_undelivered(provider_id, error, *, now=None):
    """A provider's status callback said it did not arrive: → failed, with the reason, for the worklist."""
    return _provider_status(provider_id, ("sent", "delivered"), status="failed",
                            last_error=_short(error, ERROR_LENGTH))


def _provider_status(provider_id, from_statuses, **values):
    if not provider_id:
        return False
    return bool(db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.provider_id == provider_id, OutboxMessage.status.in_(from_statuses))
        .values(**values).execution_options(synchronize_session="fetch")
    ).rowcount)


# --------------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------------

def register(kind, handler, *, app=None):
    """Send messages of ``kind`` with ``handler(message) -> provider id or None``; it raises to fail.

    A handler may read through ``db.session`` but must end that transaction before it talks to
    the network (on SQLite an open transaction holds the write lock); it never writes.
    Registering a kind replaces any batch handler it had.
    """
    handlers = _handlers(app or current_app)
    handlers[kind] = handler
    handlers.pop(_batch(kind), None)


def register_batch(kind, handler, *, app=None, size=BATCH_SIZE):
    """Send up to ``size`` messages of ``kind`` claimed together with ``handler(messages, report)``.

    The handler calls ``report(message, provider_id_or_exception)`` for each message as soon as
    its result is known (each report commits), so a crash mid-batch repeats at most the message
    in flight. A message it reports nothing for is retried later.
    """
    _handlers(app or current_app)[_batch(kind)] = (handler, size)


def _batch(kind):
    return f"{kind}:batch"


def _handlers(app):
    handlers = app.extensions.get("outbox_handlers")
    if handlers is None:
        from opsmgr.outbox.channels import built_in_handlers

        handlers = app.extensions["outbox_handlers"] = built_in_handlers()
    return handlers


def default_worker_id():
    """Who holds a claim: host, process and thread, so two dispatchers never share an id."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


# --------------------------------------------------------------------------------------------
# Dispatching
# --------------------------------------------------------------------------------------------

def dispatch_due(now, *, worker_id, limit=None, lease=LEASE, ids=None):
    """Send what is due at ``now`` (only ``ids`` if given; at most ``limit`` claims, or until none
    is left); returns how many messages were handed to a handler.

    It commits, so it refuses to start inside a transaction. Each claim's lease and each result
    are stamped with the clock, as a run may outlast one lease.
    """
    if db.session().in_transaction():
        raise RuntimeError("dispatch_due commits: call it with no transaction open")
    _close_abandoned(now)
    quiet = quiet_now(now)
    db.session.commit()  # ends the policy's read; each claim is a transaction of its own
    handlers = _handlers(current_app)
    ran = 0
    try:
        while limit is None or ran < limit:
            # The last message's result, still uncommitted, commits with this claim: one commit per message.
            messages = _claim(now, worker_id, lease, ids, handlers, None if limit is None else limit - ran, quiet)
            if not messages:
                break
            ran += _run(messages, worker_id, handlers)
    except BaseException:
        db.session.rollback()  # a result lost here leaves its row sending: sent again after the lease, flagged
        raise
    db.session.commit()
    return ran


def dispatch_immediately(ids):
    """An OUTBOX_AFTER_COMMIT for the CLI and tests: send the committed ids now, in a fresh app context."""
    app = current_app._get_current_object()
    with app.app_context():
        dispatch_due(utcnow(), worker_id=default_worker_id(), ids=ids)


def _lease_expired(now):
    return and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until <= now)


def _past_deadline(now):
    return and_(OutboxMessage.expires_at.is_not(None), OutboxMessage.expires_at <= now)


def _close_abandoned(now):
    """Before claiming: what passed its deadline expires; a claim that expired on its last allowed
    attempt is not run again: it failed."""
    db.session.execute(
        update(OutboxMessage)
        .where(_past_deadline(now), or_(OutboxMessage.status == "pending", _lease_expired(now)))
        .values(status="expired", closed_at=now, claimed_by=None, claimed_until=None,
                closed_reason=case((OutboxMessage.status == "sending", EXPIRED_IN_FLIGHT), else_=EXPIRED))
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(OutboxMessage)
        .where(_lease_expired(now), OutboxMessage.attempts >= MAX_ATTEMPTS)
        .values(status="failed", claimed_by=None, claimed_until=None, last_error=LEASE_EXPIRED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _claimable(now, quiet=False):
    """Due (or abandoned past its lease), attempts left, not expired; in the clinic's quiet hours, nothing
    to a patient (a message planned for the day that a retry or an outage pushed into the night waits for
    the morning, or expires at its session's start)."""
    conditions = [
        or_(and_(OutboxMessage.status == "pending", OutboxMessage.available_at <= now), _lease_expired(now)),
        OutboxMessage.attempts < MAX_ATTEMPTS,
        or_(OutboxMessage.expires_at.is_(None), OutboxMessage.expires_at > now),
    ]
    if quiet:
        conditions.append(or_(OutboxMessage.patient_id.is_(None), OutboxMessage.channel.not_in(PATIENT_CHANNELS)))
    return and_(*conditions)


#: Channels that reach a patient, held by quiet hours.
PATIENT_CHANNELS = ("email", "sms")


def quiet_now(now):
    """Whether `now` falls in the clinic's quiet hours (the clinical policy's, in the clinic's zone)."""
    from opsmgr.policy.service import current_policy
    from opsmgr.rules.reminders import is_quiet

    _, policy = current_policy()
    return is_quiet(now, policy, current_app.config["CLINIC_TIMEZONE"])


def _claim(now, worker_id, lease, ids, handlers, room, quiet=False):
    """Claim the next due message, and with it more of its kind when that kind has a batch handler."""
    claimable = _claimable(now, quiet)
    next_due = (select(OutboxMessage.id, OutboxMessage.kind).where(claimable)
                .order_by(OutboxMessage.available_at, OutboxMessage.id).with_for_update(skip_locked=True))
    if ids is not None:
        next_due = next_due.where(OutboxMessage.id.in_(ids))
    first = db.session.execute(next_due.limit(1)).first()
    chosen = [] if first is None else [first.id]
    batch = first is not None and handlers.get(_batch(first.kind))
    if batch:
        size = batch[1] if room is None else min(batch[1], room)
        if size > 1:
            chosen += db.session.scalars(
                next_due.with_only_columns(OutboxMessage.id)
                .where(OutboxMessage.kind == first.kind, OutboxMessage.id != first.id).limit(size - 1)
            ).all()
    rows = []
    if chosen:
        rows = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(chosen), claimable)
            .values(status="sending", claimed_by=worker_id, claimed_until=utcnow() + lease,
                    attempts=OutboxMessage.attempts + 1,
                    possibly_duplicate=or_(OutboxMessage.possibly_duplicate, OutboxMessage.status == "sending"),
                    last_error=case((OutboxMessage.status == "sending", LEASE_EXPIRED),
                                    else_=OutboxMessage.last_error))
            .returning(*_CLAIMED_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
    db.session.commit()
    order = {message_id: index for index, message_id in enumerate(chosen)}
    return sorted((ClaimedMessage(*row) for row in rows), key=lambda message: order[message.id])


def _run(messages, worker_id, handlers):
    """Hand claimed messages to their handler; returns how many were handed."""
    live = []
    for message in messages:
        if message.expires_at is not None and utcnow() >= message.expires_at:
            _record(message, worker_id, status="expired", closed_at=utcnow(), closed_reason=EXPIRED)
        else:
            live.append(message)
    if not live:
        return 0
    kind = live[0].kind
    batch = handlers.get(_batch(kind))
    if batch:
        _run_batch(batch[0], live, worker_id)
    else:
        for message in live:
            _run_one(handlers.get(kind), message, worker_id)
    return len(live)


def _run_one(handler, message, worker_id):
    """Run one message's handler and write its result, left for the next claim to commit."""
    try:
        if handler is None:
            raise LookupError(f"no handler registered for kind {message.kind!r}")
        result = handler(message)
    except Exception as error:  # noqa: BLE001 - a handler's failure is recorded and retried, never raised
        db.session.rollback()
        _record_result(message, worker_id, error, commit=False)
    else:
        db.session.rollback()
        _record_result(message, worker_id, result, commit=False)


#: True while a dispatcher records the results of a batch it claimed (see _results_synced_by_the_claim).
_RESULTS_OF_A_SYNCED_CLAIM = ContextVar("outbox_results_of_a_synced_claim", default=False)


@contextmanager
def _results_synced_by_the_claim():
    """On SQLite, commit the results of a batch with ``synchronous=NORMAL`` instead of FULL (on
    PostgreSQL, ``synchronous_commit = off`` for each result's transaction: the same bargain).

    In WAL mode a NORMAL commit survives the process being killed (the write is in the kernel's
    cache) but not a power cut, and it costs no fsync: per-message results then cost about what
    the SMTP round trip does. The batch's claim was committed FULL, so a power cut can only lose
    results and leave their rows ``sending``: they are claimed again after the lease and flagged
    possibly_duplicate, never lost and never sent unflagged. The next FULL commit syncs them.
    """
    token = _RESULTS_OF_A_SYNCED_CLAIM.set(True)
    try:
        yield
    finally:
        _RESULTS_OF_A_SYNCED_CLAIM.reset(token)


@event.listens_for(Pool, "checkout")
def _sqlite_synchronous_for_this_transaction(dbapi_connection, record, proxy):
    # PRAGMA synchronous cannot change inside a transaction; a connection is checked out before each.
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    wanted = "NORMAL" if _RESULTS_OF_A_SYNCED_CLAIM.get() else "FULL"
    if record.info.get("outbox_synchronous", "FULL") != wanted:
        dbapi_connection.execute(f"PRAGMA synchronous={wanted}")
        record.info["outbox_synchronous"] = wanted


def _run_batch(handler, messages, worker_id):
    reported = set()

    def report(message, result):
        if message.id in reported:
            return
        reported.add(message.id)
        db.session.rollback()
        _record_result(message, worker_id, result)

    with _results_synced_by_the_claim():
        try:
            handler(messages, report)
        except Exception as error:  # noqa: BLE001 - recorded against every message it left unreported
            db.session.rollback()
            for message in messages:
                report(message, error)
        for message in messages:
            report(message, RuntimeError(NO_RESULT))


def _record_result(message, worker_id, result, *, commit=True):
    if isinstance(result, BaseException):
        _record_failure(message, worker_id, result, commit=commit)
        return
    now = utcnow()
    provider_id = None if result is None else _short(str(result), 200)
    # last_error stays: a LeaseExpired there, with possibly_duplicate, marks a message that may have gone twice.
    if _record(message, worker_id, status="sent", sent_at=now, provider_id=provider_id, audit_at=now,
               commit=commit):
        log.info("outbox message %s (%s) sent%s", message.id, message.kind,
                 " (possibly a duplicate)" if message.possibly_duplicate else "")


def _record_failure(message, worker_id, error, *, commit=True):
    permanent = bool(getattr(error, "permanent", False))
    final = permanent or message.attempt >= MAX_ATTEMPTS
    delay = min(RETRY_DELAY * 2 ** (message.attempt - 1), RETRY_DELAY_CAP)
    _record(message, worker_id, status="failed" if final else "pending", available_at=utcnow() + delay,
            last_error=describe(error), commit=commit)
    log.info("outbox message %s (%s) attempt %d failed with %s%s", message.id, message.kind, message.attempt,
             type(error).__name__, "; refused for good" if permanent else "; giving up" if final else "")


def _record(message, worker_id, audit_at=None, commit=True, **values):
    """Write a result only while this claim still holds the message (the attempt number is the claim).

    Without ``commit`` the next claim commits it (dispatch_due's loop), before anything else is sent."""
    params = {f"v_{name}": value for name, value in values.items()}
    if _RESULTS_OF_A_SYNCED_CLAIM.get() and db.session.get_bind().dialect.name == "postgresql":
        # PostgreSQL's counterpart of SQLite's NORMAL (see _results_synced_by_the_claim): this transaction
        # only commits without waiting for its WAL flush.
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    done = db.session.execute(_result_statement(tuple(sorted(values))),
                              {"m_id": message.id, "m_worker": worker_id, "m_attempt": message.attempt, **params}
                              ).rowcount
    if done and audit_at is not None and message.patient_id is not None:
        _audit_sent(message, audit_at)
    if commit:
        db.session.commit()
    if not done:
        log.warning("outbox message %s (%s): its lease was taken over before the result was recorded",
                    message.id, message.kind)
    return bool(done)


@cache
def _result_statement(names):
    """The result UPDATE for these columns, built once: it runs once per message sent (Core, bound later)."""
    table = OutboxMessage.__table__
    return (update(table)
            .where(table.c.id == bindparam("m_id"), table.c.status == "sending",
                   table.c.claimed_by == bindparam("m_worker"), table.c.attempts == bindparam("m_attempt"))
            .values(claimed_by=None, claimed_until=None, **{name: bindparam(f"v_{name}") for name in names}))


def _audit_sent(message, now):
    from opsmgr.audit.service import SYSTEM, record

    details = {"channel": message.channel or message.kind, "attempt": message.attempt}
    if message.possibly_duplicate:
        details["possibly_duplicate"] = True
    record("message.sent", actor=SYSTEM, now=now, object_type="outbox_message", object_id=message.id,
           patient_id=message.patient_id, details=details)


# --------------------------------------------------------------------------------------------
# Reading, for the CLI and the worklist
# --------------------------------------------------------------------------------------------

def status_counts():
    """{status: number of messages}."""
    rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return {status: count for status, count in rows}


def describe(error):
    """The exception's class and its message on one line, short: no traceback."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:ERROR_LENGTH] if text else type(error).__name__


def _short(text, length):
    return " ".join(str(text).split())[:length]

