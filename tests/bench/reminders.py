"""Reminder dispatch against a bare smtplib loop, to the same local aiosmtpd server, in one run.

    python -m tests.bench.reminders [--db sqlite|postgres] [--messages 10000] [--out DIR]

The app's path: N due reminder emails queued through ``enqueue_message`` on a fresh migrated database,
then ``dispatch_due`` (the scheduler's pass: claims, batches of 50 over one SMTP connection, a result and
its audit row committed per message) until none is left. The baseline: the same N rendered messages
sent by ``smtplib.SMTP.send_message`` in a loop over one connection. The ratio is app rate / bare rate
(issue 12: at least 0.5, goal 0.8). Written as JSON under tests/bench/results/.
"""
import argparse
import contextlib
import json
import os
import smtplib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

HERE = Path(__file__).resolve().parent


class Counter:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1
        return "250 OK"


def free_port():
    from tests.pg import free_port as pg_free_port

    return pg_free_port()


@contextlib.contextmanager
def smtp_server():
    handler = Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def bare_rate(port, count):
    """Messages per second of smtplib over one connection (the same size as a reminder)."""
    body = "Hello,\n\n" + "This is a reminder of your appointment. " * 12
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        start = time.perf_counter()
        for number in range(count):
            message = EmailMessage()
            message["From"], message["To"] = "clinic@example.org", f"patient{number}@example.org"
            message["Subject"], message["Message-ID"] = "Your appointment", f"<bare-{number}@example.org>"
            message.set_content(body)
            smtp.send_message(message)
        return count / (time.perf_counter() - start)


def app_rate(db, port, count, folder):
    """Messages per second of the app's dispatch, every message due, on a fresh database."""
    from contextlib import ExitStack

    from flask_migrate import upgrade

    from config import Config
    from opsmgr import create_app
    from opsmgr.extensions import db as database
    from opsmgr.outbox.service import dispatch_due, enqueue_message

    with ExitStack() as stack:
        if db == "postgres":
            from tests.bench.bench import database as pg_database

            url = stack.enter_context(pg_database("postgres", folder))
        else:
            url = f"sqlite:///{folder}/reminders.sqlite3"
        app = create_app(Config({
            "OPSMGR_DATABASE_URL": url, "OPSMGR_INSTANCE_PATH": str(folder / "instance"),
            "OPSMGR_SMTP_HOST": "127.0.0.1", "OPSMGR_SMTP_PORT": str(port), "OPSMGR_SMTP_SECURITY": "none",
            "OPSMGR_MAIL_FROM": "Clinic <clinic@example.org>", "OPSMGR_TIMEZONE": "UTC"}))
        now = datetime.now(UTC)
        with app.app_context():
            upgrade()
            for number in range(count):
                enqueue_message("email", f"patient{number}@example.org",
                                "Hello,\n\n" + "This is a reminder of your appointment. " * 12,
                                subject="Your appointment", key=f"bench:{number}", due_at=now - timedelta(minutes=1),
                                now=now)
            database.session.commit()
            start = time.perf_counter()
            sent = dispatch_due(datetime.now(UTC), worker_id="bench")
            elapsed = time.perf_counter() - start
            database.session.remove()
            database.engine.dispose()
        if sent != count:
            raise RuntimeError(f"dispatched {sent} of {count}")
        return count / elapsed


def run(db="sqlite", messages=10_000, out=None, echo=print):
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="opsmgr-reminders-") as tmp, smtp_server() as (controller, handler):
        folder = Path(tmp)
        bare = bare_rate(controller.port, messages)
        received = handler.count
        app = app_rate(db, controller.port, messages, folder)
        if handler.count - received != messages:
            raise RuntimeError(f"the server received {handler.count - received} of {messages}")
    result = {"db": db, "messages": messages, "bare_smtplib_per_s": round(bare, 1), "app_per_s": round(app, 1),
              "ratio": round(app / bare, 3), "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    echo(f"reminder dispatch ({db}, {messages} emails to a local aiosmtpd): app {app:.0f}/s, bare smtplib "
         f"{bare:.0f}/s, ratio {app / bare:.2f} (must reach 0.5, goal 0.8)")
    target = Path(out or HERE / "results")
    target.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (target / f"{stamp}-reminders-{db}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default=os.environ.get("BENCH_DB", "sqlite"))
    parser.add_argument("--messages", type=int, default=int(os.environ.get("BENCH_MESSAGES", "10000")))
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    run(args.db, args.messages, args.out)


if __name__ == "__main__":
    sys.exit(main())
