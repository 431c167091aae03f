"""The outbox: rows written in the transaction, sent once after it commits, never from inside it."""
import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from opsmgr.core.scheduler import build_scheduler
from opsmgr.extensions import db
from opsmgr.outbox.jobs import dispatch_outbox
from opsmgr.outbox.models import OutboxMessage
from opsmgr.outbox.service import (
    LEASE,
    MAX_ATTEMPTS,
    dispatch_due,
    dispatch_immediately,
    enqueue,
    register,
)

PAYLOAD = {"session_id": 42, "template": "reminder_24h"}


class Recorder:
    """A handler that records the messages it was given and fails while `error` is set."""

    def __init__(self, error=None):
        self.messages = []
        self.error = error

    def __call__(self, message):
        self.messages.append(message)
        if self.error is not None:
            raise self.error

    @property
    def ids(self):
        return [message.id for message in self.messages]


@pytest.fixture
def sent(app):
    recorder = Recorder()
    register("email", recorder, app=app)
    return recorder


def enqueue_committed(app, clock, count=1, **kwargs):
    with app.app_context():
        ids = [enqueue("email", PAYLOAD, now=clock(), **kwargs).id for _ in range(count)]
        db.session.commit()
    return ids


def dispatch(app, clock, worker="worker-1", **kwargs):
    with app.app_context():
        return dispatch_due(clock(), worker_id=worker, **kwargs)


def row(app, message_id):
    with app.app_context():
        message = db.session.get(OutboxMessage, message_id)
        db.session.expunge(message)
        db.session.rollback()
        return message


def count_rows(app):
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(OutboxMessage))
        db.session.rollback()
        return total


# --------------------------------------------------------------------------------------------
# Enqueue: in the caller's transaction
# --------------------------------------------------------------------------------------------

def test_a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(app, clock, sent):
    with app.app_context():
        enqueue("email", PAYLOAD, now=clock())
        db.session.rollback()
    assert dispatch(app, clock) == 0
    assert count_rows(app) == 0 and sent.messages == []


def test_a_committed_message_is_sent_exactly_once(app, clock, sent):
    (message_id,) = enqueue_committed(app, clock)
    assert dispatch(app, clock) == 1
    assert dispatch(app, clock) == 0
    assert sent.ids == [message_id] and sent.messages[0].payload == PAYLOAD
    message = row(app, message_id)
    assert (message.status, message.sent_at, message.attempts) == ("sent", clock(), 1)
    assert message.claimed_by is None and message.claimed_until is None and message.last_error is None


def test_a_message_is_not_sent_before_it_is_available(app, clock, sent):
    (message_id,) = enqueue_committed(app, clock, available_at=clock() + timedelta(hours=24))
    assert dispatch(app, clock) == 0
    clock.advance(hours=24)
    assert dispatch(app, clock) == 1 and sent.ids == [message_id]


def test_enqueue_with_a_known_dedupe_key_returns_the_existing_row(app, clock):
    key = "reminder:session:42:24h"
    with app.app_context():
        first = enqueue("email", PAYLOAD, now=clock(), dedupe_key=key).id
        assert enqueue("email", {"other": 1}, now=clock(), dedupe_key=key).id == first
        db.session.commit()
        again = enqueue("email", {"other": 2}, now=clock(), dedupe_key=key)
        assert (again.id, again.payload) == (first, PAYLOAD)
        db.session.commit()
    assert count_rows(app) == 1
    enqueue_committed(app, clock, count=2)
    assert count_rows(app) == 3, "messages without a dedupe key are never merged"


@pytest.mark.fresh_db
def test_concurrent_enqueues_of_one_dedupe_key_make_one_row(make_app, clock):
    workers = (make_app(), make_app())
    barrier = threading.Barrier(len(workers))
    results, errors = [], []

    def work(worker_app):
        with worker_app.app_context():
            try:
                barrier.wait(timeout=30)
                results.append(enqueue("sms", PAYLOAD, now=clock(), dedupe_key="reminder:session:7:2h").id)
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                db.session.rollback()
                errors.append(repr(error))
                barrier.abort()

    run_threads([threading.Thread(target=work, args=(worker,)) for worker in workers])
    assert not errors, errors
    assert len(results) == 2 and len(set(results)) == 1
    assert count_rows(workers[0]) == 1


def test_enqueue_refuses_a_payload_that_is_not_a_json_object(app, clock):
    with app.app_context(), pytest.raises(TypeError):
        enqueue("email", ["not", "an", "object"], now=clock())


# --------------------------------------------------------------------------------------------
# The after-commit hook
# --------------------------------------------------------------------------------------------

def test_after_commit_hands_exactly_the_committed_ids_to_the_configured_callable(make_app, clock):
    handed = []
    app = make_app(OUTBOX_AFTER_COMMIT=handed.append)
    with app.app_context():
        first, second = (enqueue("email", PAYLOAD, now=clock()).id for _ in range(2))
        assert handed == [], "nothing is handed off before the commit"
        db.session.commit()
        assert handed == [[first, second]]

        enqueue("email", PAYLOAD, now=clock())
        db.session.rollback()
        db.session.commit()
        assert handed == [[first, second]], "a rolled-back message is never handed off"

        kept = enqueue("email", PAYLOAD, now=clock()).id
        savepoint = db.session.begin_nested()
        enqueue("email", PAYLOAD, now=clock())
        savepoint.rollback()
        released = db.session.begin_nested()
        in_savepoint = enqueue("email", PAYLOAD, now=clock()).id
        released.commit()
        db.session.commit()
        assert handed[-1] == [kept, in_savepoint]


def test_no_ids_are_handed_off_when_the_dedupe_key_was_already_there(make_app, clock):
    handed = []
    app = make_app(OUTBOX_AFTER_COMMIT=handed.append)
    enqueue_committed(app, clock, dedupe_key="reminder:session:1:24h")
    enqueue_committed(app, clock, dedupe_key="reminder:session:1:24h")
    assert len(handed) == 1


def test_a_failing_hand_off_does_not_undo_or_fail_the_commit(make_app, clock, caplog):
    def broken(ids):
        raise ConnectionError("no route")

    app = make_app(OUTBOX_AFTER_COMMIT=broken)
    (message_id,) = enqueue_committed(app, clock)
    assert row(app, message_id).status == "pending", "the scheduler still sends it"
    assert "ConnectionError" in caplog.text


@pytest.mark.fresh_db
def test_the_immediate_dispatcher_sends_after_the_commit_with_no_transaction_open(make_app, clock):
    app = make_app(OUTBOX_AFTER_COMMIT=dispatch_immediately)
    seen = []

    def handler(message):
        with db.engine.connect() as other:  # what another connection sees: the row has committed
            seen.append((db.session().in_transaction(),
                         other.scalar(select(OutboxMessage.status).where(OutboxMessage.id == message.id))))

    register("email", handler, app=app)
    with app.app_context():
        message_id = enqueue("email", PAYLOAD, now=clock()).id
        assert seen == []
        db.session.commit()
    assert seen == [(False, "sending")]
    assert row(app, message_id).status == "sent"


# --------------------------------------------------------------------------------------------
# Failures, retries, leases
# --------------------------------------------------------------------------------------------

def test_a_failing_handler_leaves_the_message_pending_with_a_later_retry(app, clock):
    register("email", Recorder(ConnectionRefusedError("relay refused\n  try later")), app=app)
    (message_id,) = enqueue_committed(app, clock)
    assert dispatch(app, clock) == 1
    message = row(app, message_id)
    assert (message.status, message.attempts, message.sent_at) == ("pending", 1, None)
    assert message.last_error == "ConnectionRefusedError: relay refused try later"
    assert message.available_at == clock() + timedelta(minutes=1)
    assert message.claimed_by is None and message.claimed_until is None
    assert dispatch(app, clock) == 0, "not again before its retry time"
    clock.advance(minutes=1)
    assert dispatch(app, clock) == 1
    assert row(app, message_id).available_at == clock() + timedelta(minutes=2)


def test_a_message_that_fails_every_attempt_ends_failed_and_is_left_alone(app, clock):
    handler = Recorder(TimeoutError("provider timed out"))
    register("sms", handler, app=app)
    with app.app_context():
        message_id = enqueue("sms", PAYLOAD, now=clock()).id
        db.session.commit()
    delays = []
    for _ in range(MAX_ATTEMPTS):
        clock.now = row(app, message_id).available_at
        assert dispatch(app, clock) == 1
        delays.append(row(app, message_id).available_at - clock())
    assert delays[:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    message = row(app, message_id)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert message.last_error.startswith("TimeoutError") and "Traceback" not in message.last_error
    clock.advance(days=1)
    assert dispatch(app, clock) == 0 and len(handler.messages) == MAX_ATTEMPTS


def test_a_message_of_an_unregistered_kind_is_retried_later(app, clock):
    with app.app_context():
        message_id = enqueue("fax", PAYLOAD, now=clock()).id
        db.session.commit()
    assert dispatch(app, clock) == 1
    message = row(app, message_id)
    assert message.status == "pending" and message.last_error.startswith("LookupError")


def simulate_a_crashed_claim(app, message_id, claimed_until, attempts=1):
    with app.app_context():
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(
            status="sending", claimed_by="crashed-worker", claimed_until=claimed_until, attempts=attempts))
        db.session.commit()


def test_a_claim_within_its_lease_is_left_alone_and_claimed_again_once_it_expires(app, clock, sent):
    (message_id,) = enqueue_committed(app, clock)
    simulate_a_crashed_claim(app, message_id, clock() + LEASE)
    assert dispatch(app, clock) == 0, "another dispatcher holds it"
    clock.advance(minutes=5)
    assert dispatch(app, clock) == 1 and sent.ids == [message_id]
    message = row(app, message_id)
    assert (message.status, message.attempts, message.claimed_by) == ("sent", 2, None)
    assert message.last_error.startswith("LeaseExpired")


def test_a_lease_that_expired_on_the_last_attempt_is_failed_not_run_again(app, clock, sent):
    (message_id,) = enqueue_committed(app, clock)
    simulate_a_crashed_claim(app, message_id, clock() - timedelta(seconds=1), attempts=MAX_ATTEMPTS)
    assert dispatch(app, clock) == 0 and sent.messages == []
    message = row(app, message_id)
    assert (message.status, message.claimed_until) == ("failed", None)
    assert message.last_error.startswith("LeaseExpired")


def test_a_result_arriving_after_the_lease_was_taken_over_is_not_recorded(app, clock, caplog):
    """The documented at-least-once case: a handler outlives its lease; the row is marked sent once."""
    calls = []

    def slow_handler(message):
        calls.append(message.attempt)
        if message.attempt == 1:
            clock.advance(minutes=6)
            assert dispatch(app, clock, worker="worker-2") == 1

    register("email", slow_handler, app=app)
    (message_id,) = enqueue_committed(app, clock)
    sent_by_second = clock() + timedelta(minutes=6)
    assert dispatch(app, clock) == 1
    assert calls == [1, 2]
    message = row(app, message_id)
    assert (message.status, message.attempts, message.sent_at) == ("sent", 2, sent_by_second)
    assert "lease was taken over" in caplog.text


def test_dispatch_refuses_to_run_inside_an_open_transaction(app, clock):
    with app.app_context():
        enqueue("email", PAYLOAD, now=clock())
        with pytest.raises(RuntimeError, match="no transaction open"):
            dispatch_due(clock(), worker_id="worker-1")
        db.session.rollback()


# --------------------------------------------------------------------------------------------
# Two dispatchers at once
# --------------------------------------------------------------------------------------------

def run_threads(threads):
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"


@pytest.mark.fresh_db
def test_two_dispatchers_racing_send_each_message_exactly_once(make_app, clock):
    """Each worker waits in its first handler call until the other is in one too, so both are
    mid-dispatch at the same moment (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    workers = {"worker-a": make_app(), "worker-b": make_app()}
    ids = enqueue_committed(workers["worker-a"], clock, count=20)
    both_sending = threading.Barrier(len(workers))
    handled, errors, guard = [], [], threading.Lock()

    def handler_for(name):
        def handler(message):
            with guard:
                first = not any(worker == name for worker, _ in handled)
                handled.append((name, message.id))
            if first:
                both_sending.wait(timeout=30)
        return handler

    def work(name, worker_app):
        try:
            dispatch(worker_app, clock, worker=name)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append((name, repr(error)))
            both_sending.abort()

    for name, worker_app in workers.items():
        register("email", handler_for(name), app=worker_app)
    run_threads([threading.Thread(target=work, args=item) for item in workers.items()])
    assert not errors, errors
    assert sorted(message_id for _, message_id in handled) == ids, "every message handled exactly once"
    assert {name for name, _ in handled} == set(workers)
    assert {row(workers["worker-b"], message_id).status for message_id in ids} == {"sent"}


# --------------------------------------------------------------------------------------------
# The scheduler and the log
# --------------------------------------------------------------------------------------------

def test_the_scheduler_dispatches_the_outbox_every_ten_seconds(app, clock, sent):
    job = build_scheduler(app).get_job("outbox.dispatch")
    assert job is not None and job.trigger.interval == timedelta(seconds=10)
    (message_id,) = enqueue_committed(app, clock)
    with app.app_context():
        dispatch_outbox()
    assert sent.ids == [message_id] and row(app, message_id).status == "sent"


def test_results_are_logged_with_id_and_kind_never_the_payload(app, clock, caplog):
    caplog.set_level(logging.DEBUG)
    secret = {"to": "canary.patient@example.org", "body": "Canary Zyxwvut, see you tomorrow"}
    register("email", Recorder(), app=app)
    register("sms", Recorder(ConnectionError(secret["to"])), app=app)
    with app.app_context():
        sent_id = enqueue("email", secret, now=clock()).id
        failed_id = enqueue("sms", secret, now=clock()).id
        db.session.commit()
    dispatch(app, clock)
    assert f"outbox message {sent_id} (email) sent" in caplog.text
    assert f"outbox message {failed_id} (sms) attempt 1 failed with ConnectionError" in caplog.text
    for value in secret.values():
        assert value not in caplog.text
