"""The delivery engine: the outbox as the message queue for patient and staff messages.

Expired and cancelled messages never go out; a claim taken over after its lease flags the message
as possibly sent twice; two dispatcher processes never send one message twice; a dispatcher killed
with SIGKILL again and again loses nothing and repeats at most one message per kill, flagged; after
two hours of downtime everything due goes out once in the next pass.
"""
import os
import random
import signal
import time
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update

from config import Config
from opsmgr.audit.models import AuditEvent
from opsmgr.core.clock import system_now, utcnow
from opsmgr.extensions import db
from opsmgr.messaging.channels import DeliveryError
from opsmgr.outbox.jobs import dispatch_outbox
from opsmgr.outbox.models import OutboxMessage
from opsmgr.outbox.service import (
    MAX_ATTEMPTS,
    cancel_pending,
    dispatch_due,
    enqueue_message,
    mark_delivered,
    mark_undelivered,
    register,
    register_batch,
)
from tests.factories import build_world

EMAIL = "pat@example.org"


class Recorder:
    """A provider in memory: records each message and answers a provider id, or raises `error`."""

    def __init__(self, error=None):
        self.messages = []
        self.error = error

    def __call__(self, message):
        self.messages.append(message)
        if self.error is not None:
            raise self.error
        return f"prov-{message.id}-{message.attempt}"

    @property
    def keys(self):
        return [message.dedupe_key for message in self.messages]


@pytest.fixture
def provider(app):
    recorder = Recorder()
    register("email", recorder, app=app)
    register("sms", recorder, app=app)
    return recorder


def queue(app, clock, key, *, channel="email", due_in=timedelta(0), expires_in=None, **fields):
    with app.app_context():
        message = enqueue_message(
            channel, fields.pop("recipient", EMAIL if channel == "email" else "+15555550100"),
            fields.pop("body", "See you tomorrow at 9:00."), subject=fields.pop("subject", "Your visit"),
            key=key, due_at=clock() + due_in, expires_at=None if expires_in is None else clock() + expires_in,
            now=clock(), **fields)
        db.session.commit()
        return message.id


def dispatch(app, clock=None, worker="worker-1", **kwargs):
    with app.app_context():
        return dispatch_due(clock() if clock else utcnow(), worker_id=worker, **kwargs)


def row(app, message_id):
    with app.app_context():
        message = db.session.get(OutboxMessage, message_id)
        db.session.expunge(message)
        db.session.rollback()
        return message


def statuses(app):
    with app.app_context():
        found = dict(db.session.execute(select(OutboxMessage.dedupe_key, OutboxMessage.status)).all())
        db.session.rollback()
        return found


# --------------------------------------------------------------------------------------------
# Writing messages
# --------------------------------------------------------------------------------------------

def test_a_message_keeps_its_channel_recipient_text_and_due_time_and_its_key_makes_it_once(app, clock, provider):
    world = build_world(app, clock)
    message_id = queue(app, clock, "reminder:s1:24h", due_in=timedelta(hours=1), expires_in=timedelta(hours=2),
                       patient_id=world["patient"], session_id=world["session"])
    again = queue(app, clock, "reminder:s1:24h", body="Other words", due_in=timedelta(minutes=5))
    assert again == message_id
    message = row(app, message_id)
    assert (message.status, message.channel, message.kind, message.recipient, message.subject, message.body) == (
        "pending", "email", "email", EMAIL, "Your visit", "See you tomorrow at 9:00.")
    assert (message.available_at, message.expires_at) == (clock() + timedelta(hours=1), clock() + timedelta(hours=2))
    assert (message.patient_id, message.session_id, message.possibly_duplicate) == (
        world["patient"], world["session"], False)
    assert dispatch(app, clock) == 0, "not before it is due"
    clock.advance(hours=1)
    assert dispatch(app, clock) == 1 and provider.keys == ["reminder:s1:24h"]
    sent = row(app, message_id)
    assert (sent.status, sent.sent_at, sent.provider_id) == ("sent", clock(), f"prov-{message_id}-1")
    with app.app_context():
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "message.sent")).one()
        assert (audit.patient_id, audit.object_id, audit.username) == (world["patient"], str(message_id), "system")
        assert EMAIL not in audit.details and "tomorrow" not in audit.details


@pytest.mark.parametrize("bad, error", [
    ({"channel": "fax"}, "unknown channel"),
    ({"key": ""}, "idempotency key"),
    ({"recipient": ""}, "recipient"),
    ({"expires_in": timedelta(0)}, "due before it expires"),
])
def test_a_message_that_could_never_be_sent_is_refused_when_written(app, clock, bad, error):
    with pytest.raises(ValueError, match=error):
        queue(app, clock, **{"key": "reminder:x", **bad})


# --------------------------------------------------------------------------------------------
# Expired and cancelled messages are never sent
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("late, sent", [(timedelta(minutes=59, seconds=59), True), (timedelta(hours=1), False),
                                        (timedelta(hours=3), False)])
def test_a_message_reaching_its_deadline_expires_instead_of_going_late(app, clock, provider, late, sent):
    message_id = queue(app, clock, "reminder:s1:2h", expires_in=timedelta(hours=1))
    clock.advance(seconds=late.total_seconds())
    assert dispatch(app, clock) == int(sent)
    message = row(app, message_id)
    if sent:
        assert message.status == "sent" and provider.keys == ["reminder:s1:2h"]
    else:
        assert (message.status, message.closed_at, provider.messages) == ("expired", clock(), [])
        assert message.closed_reason.startswith("expired")


def test_a_claimed_message_whose_deadline_passes_before_its_turn_is_expired_not_sent(app, clock):
    """The deadline is checked again just before the handler, with the clock, not the pass's start."""
    first, second = (queue(app, clock, f"reminder:s{n}:2h", expires_in=timedelta(minutes=10)) for n in (1, 2))
    sent = []

    def slow(message):
        sent.append(message.id)
        clock.advance(minutes=11)

    register("email", slow, app=app)
    assert dispatch(app, clock) == 1
    assert sent == [first] and row(app, second).status == "expired"


def test_an_interrupted_attempt_past_its_deadline_is_expired_and_says_it_may_have_gone(app, clock, provider):
    message_id = queue(app, clock, "reminder:s1:2h", expires_in=timedelta(hours=1))
    claim_and_crash(app, message_id, claimed_until=clock() + timedelta(minutes=5))
    clock.advance(hours=2)
    assert dispatch(app, clock) == 0 and provider.messages == []
    message = row(app, message_id)
    assert (message.status, message.claimed_by) == ("expired", None)
    assert "may have sent it" in message.closed_reason


def test_cancelling_a_sessions_messages_takes_back_the_pending_ones_only(app, clock, provider):
    world = build_world(app, clock)
    on_session = {"session_id": world["session"], "patient_id": world["patient"]}
    pending = queue(app, clock, "reminder:s1:48h", **on_session)
    later = queue(app, clock, "reminder:s1:24h", due_in=timedelta(days=1), **on_session)
    in_flight = queue(app, clock, "reminder:s1:confirm", **on_session)
    elsewhere = queue(app, clock, "reminder:s2:24h", patient_id=world["patient"])
    claim_and_crash(app, in_flight, claimed_until=clock() + timedelta(minutes=5))
    with app.app_context():
        assert cancel_pending(session_id=world["session"], reason="session moved to Friday", now=clock()) == 2
        db.session.commit()
    clock.advance(days=2)
    assert dispatch(app, clock) == 2, "the one in flight finishes; the other session's goes"
    assert sorted(provider.keys) == ["reminder:s1:confirm", "reminder:s2:24h"]
    for message_id in (pending, later):
        message = row(app, message_id)
        assert (message.status, message.closed_reason) == ("cancelled", "session moved to Friday")
    assert row(app, elsewhere).status == "sent"


def test_cancelling_by_key_prefix_and_enqueueing_the_key_again_revives_it_with_the_new_text(app, clock, provider):
    cancelled = queue(app, clock, "reminder:s1:24h", due_in=timedelta(hours=1))
    untouched = queue(app, clock, "reminder:s10:24h", due_in=timedelta(hours=1))
    like_wildcards = queue(app, clock, "reminder:sX1:24h", due_in=timedelta(hours=1))
    with app.app_context():
        assert cancel_pending(key_prefix="reminder:s1:", reason="rebooked", now=clock()) == 1
        assert cancel_pending(key_prefix="reminder:s_1:", reason="rebooked", now=clock()) == 0
        db.session.commit()
    assert queue(app, clock, "reminder:s1:24h", body="Now at 10:00.", due_in=timedelta(hours=2)) == cancelled
    revived = row(app, cancelled)
    assert (revived.status, revived.body, revived.closed_at, revived.closed_reason) == (
        "pending", "Now at 10:00.", None, None)
    assert revived.available_at == clock() + timedelta(hours=2)
    clock.advance(hours=2)
    assert dispatch(app, clock) == 3
    assert sorted(provider.keys) == sorted(["reminder:s1:24h", "reminder:s10:24h", "reminder:sX1:24h"])
    assert [m.body for m in provider.messages if m.id == cancelled] == ["Now at 10:00."]
    assert {row(app, i).status for i in (untouched, like_wildcards)} == {"sent"}


# --------------------------------------------------------------------------------------------
# Leases, retries, provider callbacks
# --------------------------------------------------------------------------------------------

def claim_and_crash(app, message_id, *, claimed_until, attempts=1):
    with app.app_context():
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(
            status="sending", claimed_by="killed-worker", claimed_until=claimed_until, attempts=attempts))
        db.session.commit()


def test_a_claim_taken_over_after_its_lease_is_flagged_possibly_duplicate_with_the_same_key(app, clock, provider):
    message_id = queue(app, clock, "reminder:s1:24h")
    untouched = queue(app, clock, "reminder:s2:24h")
    claim_and_crash(app, message_id, claimed_until=clock() + timedelta(seconds=30))
    assert dispatch(app, clock) == 1 and provider.keys == ["reminder:s2:24h"]
    clock.advance(seconds=30)
    assert dispatch(app, clock) == 1
    assert provider.keys[-1] == "reminder:s1:24h" and provider.messages[-1].possibly_duplicate
    message = row(app, message_id)
    assert (message.status, message.attempts, message.possibly_duplicate) == ("sent", 2, True)
    assert row(app, untouched).possibly_duplicate is False


def test_a_refusal_for_good_fails_at_once_and_an_outage_retries_with_backoff(app, clock):
    outage = queue(app, clock, "reminder:s1:24h", channel="sms")
    refused = queue(app, clock, "reminder:s2:24h", channel="email")
    register("sms", Recorder(DeliveryError("Twilio 503", permanent=False, code=503)), app=app)
    register("email", Recorder(DeliveryError("SMTP 550 5.1.1: recipient refused", permanent=True, code=550)),
             app=app)
    assert dispatch(app, clock) == 2
    assert (row(app, refused).status, row(app, refused).attempts) == ("failed", 1)
    assert row(app, refused).last_error == "DeliveryError: SMTP 550 5.1.1: recipient refused"
    assert (row(app, outage).status, row(app, outage).available_at) == ("pending", clock() + timedelta(minutes=1))
    for _ in range(MAX_ATTEMPTS - 1):
        clock.now = row(app, outage).available_at
        assert dispatch(app, clock) == 1
    assert row(app, outage).status == "failed" and row(app, outage).attempts == MAX_ATTEMPTS


def test_status_callbacks_mark_a_sent_message_delivered_or_undelivered(app, clock, provider):
    first, second = queue(app, clock, "reminder:s1:24h"), queue(app, clock, "reminder:s2:24h")
    dispatch(app, clock)
    with app.app_context():
        assert mark_delivered(f"prov-{first}-1", now=clock())
        assert mark_undelivered(f"prov-{second}-1", "Twilio 30003: unreachable handset", now=clock())
        assert not mark_delivered("prov-unknown", now=clock())
        db.session.commit()
    assert row(app, first).status == "delivered"
    assert (row(app, second).status, row(app, second).last_error) == ("failed", "Twilio 30003: unreachable handset")


# --------------------------------------------------------------------------------------------
# Batches: one claim, one connection, each result recorded as it comes
# --------------------------------------------------------------------------------------------

def sqlite_synchronous(app):
    with app.app_context():
        level = db.session.execute(text("PRAGMA synchronous")).scalar()
        db.session.rollback()
        return {1: "NORMAL", 2: "FULL"}[level]


def test_a_batch_handler_gets_the_due_messages_of_its_kind_together_and_reports_each(app, clock, provider, backend):
    emails = [queue(app, clock, f"reminder:e{n}") for n in range(5)]
    sms = queue(app, clock, "reminder:t1", channel="sms")
    batches, seen_committed, synchronous = [], [], []

    def send_many(messages, report):
        batches.append([message.id for message in messages])
        for message in messages:
            if message.dedupe_key == "reminder:e3":
                report(message, DeliveryError("SMTP 451", permanent=False, code=451))
            elif message.dedupe_key != "reminder:e4":  # e4 is never reported
                report(message, f"<{message.dedupe_key}>")
                seen_committed.append(row(app, message.id).status)
                if backend == "sqlite":
                    synchronous.append(sqlite_synchronous(app))
        raise ConnectionResetError("dropped after the batch")

    register_batch("email", send_many, app=app, size=3)
    assert dispatch(app, clock) == 6
    assert batches == [emails[:3], emails[3:]] and provider.keys == ["reminder:t1"]
    assert seen_committed == ["sent", "sent", "sent"], "each result is committed before the next message"
    assert [row(app, i).status for i in emails] == ["sent", "sent", "sent", "pending", "pending"]
    assert row(app, emails[3]).last_error.startswith("DeliveryError: SMTP 451")
    assert row(app, emails[4]).last_error.startswith("ConnectionResetError")
    assert row(app, sms).status == "sent"
    if backend == "sqlite":  # results of a claim committed FULL are committed NORMAL; everything else FULL
        assert synchronous == ["NORMAL"] * 3 and sqlite_synchronous(app) == "FULL"


def test_the_built_in_channels_write_the_messages_to_the_outbox_folder_with_no_provider_configured(app, clock):
    email = queue(app, clock, "reminder:s1:24h")
    sms = queue(app, clock, "reminder:s1:sms", channel="sms", body="Reply YES to confirm.")
    assert dispatch(app, clock) == 2
    folder = Path(app.config["OUTBOX_DIR"])
    eml, = folder.glob("*.eml")
    json_file, = folder.glob("*.json")
    assert "See you tomorrow at 9:00." in eml.read_text() and "Reply YES to confirm." in json_file.read_text()
    assert row(app, email).provider_id == f"file:{eml.name}" and row(app, sms).provider_id == f"file:{json_file.name}"


def test_flask_reminders_send_due_runs_one_pass_and_says_what_is_left(app, clock, provider):
    queue(app, clock, "reminder:s1:24h")
    queue(app, clock, "reminder:s2:24h", due_in=timedelta(hours=1))
    result = app.test_cli_runner().invoke(args=["reminders", "send-due"])
    assert result.exit_code == 0, result.output
    assert "1 message(s) handed to their channel" in result.output and "pending 1, sent 1" in result.output
    assert EMAIL not in result.output


def test_web_workers_never_send_the_production_configuration_hands_nothing_off_after_a_commit(tmp_path):
    config = Config({"OPSMGR_INSTANCE_PATH": str(tmp_path), "OPSMGR_TIMEZONE": "UTC"})
    assert getattr(config, "OUTBOX_AFTER_COMMIT", None) is None, "only the scheduler process sends"


# --------------------------------------------------------------------------------------------
# Downtime: everything due goes out once within two passes
# --------------------------------------------------------------------------------------------

def test_after_two_hours_of_downtime_fifty_due_messages_go_out_once_within_two_passes(app, clock, provider):
    """The scheduler is down from the first message's due time to two hours later; its first tick
    after the restart (the dispatch job) sends the backlog, the second finds nothing left to send."""
    start = clock()
    due = [queue(app, clock, f"reminder:d{n}", due_in=timedelta(minutes=n * 120 / 50)) for n in range(50)]
    started = queue(app, clock, "reminder:started", due_in=timedelta(minutes=10), expires_in=timedelta(minutes=90))
    clock.now = start + timedelta(hours=2)
    with app.app_context():
        dispatch_outbox()
    assert {row(app, message_id).status for message_id in due} == {"sent"}
    clock.advance(seconds=10)
    with app.app_context():
        dispatch_outbox()
    assert Counter(provider.keys) == {f"reminder:d{n}": 1 for n in range(50)}
    assert row(app, started).status == "expired", "a reminder whose session began in the gap is never sent late"


# --------------------------------------------------------------------------------------------
# Processes: two dispatchers at once, and a dispatcher killed again and again
# --------------------------------------------------------------------------------------------

class FileProvider:
    """The provider as a file: one line per accepted message, appended with O_APPEND (one write(),
    so lines from two processes never interleave). Once write() returns the line is in the kernel's
    page cache and survives SIGKILL of the writer; only a power cut would need an fsync."""

    def __init__(self, path, wait_for_peers=None):
        self.path = path
        self.wait_for_peers = wait_for_peers

    def __call__(self, message):
        if self.wait_for_peers is not None:
            self.wait_for_peers()
            self.wait_for_peers = None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{message.dedupe_key} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        return f"line:{message.id}"

    def send_many(self, messages, report):
        """The batch path (email over one connection): each result reported as it is known."""
        for message in messages:
            report(message, self(message))


def provider_lines(path):
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def use_provider(app, provider):
    register("email", provider, app=app)
    register_batch("email", provider.send_many, app=app, size=10)
    register("sms", provider, app=app)


def fork_dispatcher(app, provider, *, lease, forever):
    """A dispatcher in a child process (forked: no interpreter start-up per restart). Email goes
    through the batch path, ten to a claim; SMS one message per claim."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        with app.app_context():
            db.engine.dispose(close=False)  # never touch the parent's connections
            use_provider(app, provider)
            while True:
                handed = dispatch_due(utcnow(), worker_id=f"child-{os.getpid()}", lease=lease)
                if not forever and handed == 0:
                    break
                if handed == 0:
                    time.sleep(0.01)
    except BaseException:  # noqa: BLE001 - reported through the exit status
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def wait_until(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.002)


def queue_due_now(app, count, channels=("email",)):
    """``count`` reminders due a minute ago, the channels taking turns, inserted in one statement
    (as enqueue_message writes them)."""
    now = system_now()
    rows = [{"kind": channels[n % len(channels)], "channel": channels[n % len(channels)], "payload": {},
             "recipient": EMAIL, "subject": "Reminder",
             "body": "Your reminder", "dedupe_key": f"reminder:{n:04d}", "created_at": now,
             "available_at": now - timedelta(minutes=1), "status": "pending", "attempts": 0} for n in range(count)]
    with app.app_context():
        db.session.execute(insert(OutboxMessage), rows)
        db.session.commit()


def exit_status(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"dispatcher {pid} hung")
        time.sleep(0.005)


@pytest.mark.fresh_db
def test_two_dispatcher_processes_over_the_same_due_messages_send_each_once(make_app, tmp_path):
    app = make_app(CLOCK=None)
    queue_due_now(app, 100)
    path, ready = tmp_path / "provider.log", tmp_path / "ready"
    ready.mkdir()

    def both_sending():  # each child's first message waits until the other child is sending too
        (ready / str(os.getpid())).touch()
        wait_until(lambda: len(list(ready.iterdir())) == 2, 20, "the other dispatcher never started")

    children = [fork_dispatcher(app, FileProvider(path, both_sending), lease=timedelta(minutes=5), forever=False)
                for _ in range(2)]
    assert [exit_status(pid) for pid in children] == [0, 0]
    lines = provider_lines(path)
    assert Counter(key for key, _ in lines) == {f"reminder:{n:04d}": 1 for n in range(100)}
    assert {int(pid) for _, pid in lines} == set(children)
    assert set(statuses(app).values()) == {"sent"}


@pytest.mark.fresh_db
def test_a_dispatcher_killed_twenty_times_loses_nothing_and_repeats_at_most_one_flagged_message_per_kill(
        make_app, tmp_path):
    """Email in batches of ten and SMS one by one, interleaved: both paths record each result before
    the next message goes, so a kill repeats at most the message in flight."""
    app = make_app(CLOCK=None)
    queue_due_now(app, 500, channels=("email", "sms"))
    path, lease, kills = tmp_path / "provider.log", timedelta(seconds=0.5), 20
    chance = random.Random(os.environ.get("OPSMGR_CRASH_SEED", "12"))
    for _ in range(kills):
        target = len(provider_lines(path)) + chance.randint(1, 12)
        pid = fork_dispatcher(app, FileProvider(path), lease=lease, forever=True)
        wait_until(lambda target=target: len(provider_lines(path)) >= target, 30, "the dispatcher made no progress")
        time.sleep(chance.random() * 0.012)  # anywhere: in the handler, between send and commit, in a claim
        os.kill(pid, signal.SIGKILL)
        assert exit_status(pid) == -signal.SIGKILL
    assert exit_status(fork_dispatcher(app, FileProvider(path), lease=lease, forever=False)) == 0
    # the last claims of killed dispatchers come back after their lease
    use_provider(app, FileProvider(path))
    deadline = time.monotonic() + 30
    while set(statuses(app).values()) != {"sent"}:
        assert time.monotonic() < deadline, Counter(statuses(app).values())
        dispatch(app, lease=lease)
        time.sleep(0.05)

    delivered = Counter(key for key, _ in provider_lines(path))
    assert set(delivered) == {f"reminder:{n:04d}" for n in range(500)}, "none lost"
    repeated = {key for key, count in delivered.items() if count > 1}
    assert sum(delivered[key] - 1 for key in repeated) <= kills
    with app.app_context():
        flagged = set(db.session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.possibly_duplicate)))
        assert db.session.scalar(select(func.count()).where(OutboxMessage.status == "sent")) == 500
        db.session.rollback()
    assert repeated <= flagged, "every message sent twice is flagged"
    assert len(flagged) <= kills * 10, "each kill leaves at most its claim (a batch of ten) to flag"
