"""`flask reminders send-due`: one delivery pass, for operations (the scheduler runs the same every 10 s)."""
from datetime import timedelta

import click
from flask.cli import AppGroup

from opsmgr.core.clock import utcnow
from opsmgr.extensions import db
from opsmgr.outbox.service import LEASE, default_worker_id, dispatch_due, status_counts

reminders = AppGroup("reminders", help="Patient reminders and other outgoing messages.")


@reminders.command("send-due")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after this many messages (default: everything due).")
@click.option("--lease-seconds", type=click.FloatRange(min=0.1), default=LEASE.total_seconds(), show_default=True,
              help="How long a claim is held before another dispatcher may take it over.")
def send_due(limit, lease_seconds):
    """Send every message that is due now, once, and say what is left.

    Safe beside a running scheduler: claims are atomic, so no message goes out twice."""
    handed = dispatch_due(utcnow(), worker_id=default_worker_id(), limit=limit,
                          lease=timedelta(seconds=lease_seconds))
    counts = status_counts()
    db.session.rollback()
    summary = ", ".join(f"{status} {counts[status]}" for status in sorted(counts)) or "no messages"
    click.echo(f"{handed} message(s) handed to their channel. Outbox now: {summary}.")
