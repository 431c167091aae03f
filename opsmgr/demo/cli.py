"""`flask demo seed`: demo accounts and a fictional clinic on a fresh install; passwords printed and saved."""
import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.auth.service import AccountError
from opsmgr.core.clock import utcnow
from opsmgr.demo import service
from opsmgr.demo.worklist import seed_demo_worklist
from opsmgr.extensions import db
from opsmgr.schedule.service import BookingError

demo = AppGroup("demo", help="Demo data for trying opsmgr out.")


@demo.command("seed")
def seed():
    """Create the demo staff and the fictional demo clinic if no staff exist yet (safe to run again)."""
    if service.has_staff():
        click.echo("Staff accounts exist already; demo seed skipped.")
        saved = _credentials_path()
        if saved.is_file():  # the path, never the passwords: this output may be kept in a log
            click.echo(f"The demo accounts' passwords are in {saved} (readable by this user only).")
        return
    now = utcnow()
    try:
        created = service.seed_demo_staff(now=now, password=os.environ.get("OPSMGR_DEMO_PASSWORD"))
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(f"OPSMGR_DEMO_PASSWORD refused: {error}") from None
    counts = None
    if service.clinic_is_empty():
        try:
            counts = service.seed_demo_clinic(now=now)
        except BookingError as error:
            db.session.rollback()
            raise click.ClickException(f"The demo clinic could not be booked: {error} Nothing was saved.") from None
    db.session.commit()  # the commit plans the follow-ups and queues the reminders (opsmgr.followups)
    if counts is not None:
        seed_demo_worklist(now=now)
        db.session.commit()
    _write_credentials(created)
    if counts is None:
        click.echo("Chairs or patients exist already; the demo clinic was not added.")
    else:
        click.echo("Demo clinic created (all fictional): {chairs} chairs, {patients} patients, {series} series, "
                   "{sessions} sessions ({sessions_today} today).".format(**counts))
    click.echo(f"Demo staff accounts created (passwords also in {_credentials_path()}):")
    for username, password in created.items():
        click.echo(f"  {username}  {password}")


def _credentials_path():
    return Path(current_app.instance_path) / "demo-credentials.txt"


def _write_credentials(created):
    path = _credentials_path()
    lines = [f"{username}\t{password}" for username, password in created.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# opsmgr demo accounts (fictional clinic). username<TAB>password\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o600)
