"""`flask demo seed`: the demo accounts on a fresh install, passwords printed and kept in instance/."""
import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from opsmgr.auth.service import AccountError
from opsmgr.core.clock import utcnow
from opsmgr.demo import service
from opsmgr.extensions import db

demo = AppGroup("demo", help="Demo data for trying opsmgr out.")


@demo.command("seed")
def seed():
    """Create the demo staff accounts if no staff exist yet (safe to run again)."""
    if service.has_staff():
        click.echo("Staff accounts exist already; demo seed skipped.")
        return
    try:
        created = service.seed_demo_staff(now=utcnow(), password=os.environ.get("OPSMGR_DEMO_PASSWORD"))
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(f"OPSMGR_DEMO_PASSWORD refused: {error}") from None
    db.session.commit()
    path = Path(current_app.instance_path) / "demo-credentials.txt"
    lines = [f"{username}\t{password}" for username, password in created.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# opsmgr demo accounts (fictional clinic). username<TAB>password\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    click.echo("Demo staff accounts created (passwords also in instance/demo-credentials.txt):")
    for line in lines:
        click.echo("  " + line.replace("\t", "  "))
